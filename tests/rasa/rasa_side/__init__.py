"""Programs that run in the Rasa 3.6.21 venv (never imported by the test process)."""
