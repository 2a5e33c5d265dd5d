"""Rasa 3.6's own PikaEventBroker connects (declaring its exchange and queues) and publishes.

Runs in the Rasa venv: ``python pika_publisher.py CONFIG_JSON`` with ``url``, ``port``,
``username``, ``password``, ``exchange_name``, ``queues`` and ``bodies`` (what Rasa's
tracker store hands ``publish``: ``{"sender_id", **event}``). Exits non-zero when the
broker cannot start (e.g. RabbitMQ refuses its exchange declaration).
"""

import asyncio
import json
import sys

import rasa.shared.core.events  # noqa: F401 - Rasa's pika module uses it unimported
from rasa.core.brokers.pika import PikaEventBroker
from rasa.utils.endpoints import EndpointConfig


async def main(config: dict) -> None:
    endpoint = EndpointConfig(
        url=config["url"],
        port=config["port"],
        username=config["username"],
        password=config["password"],
        exchange_name=config["exchange_name"],
        queues=config["queues"],
        connection_attempts=1,
        retry_delay_in_seconds=0,
        raise_on_failure=True,
    )
    broker = await PikaEventBroker.from_endpoint_config(endpoint)
    for body in config["bodies"]:
        broker.publish(body)
    while broker._background_tasks:  # publishing runs in background tasks
        await asyncio.sleep(0.05)
    await broker.close()
    print("published", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
