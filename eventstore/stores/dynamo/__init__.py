"""DynamoDB backend: the store, its config and its item layout."""
