"""The heartbeat batch as the API really treats it: the body must be an
object with a "heartbeats" list of at most 1,000 items, but each item is
checked on its own; a malformed one is named in the 202's ``rejected`` and
never fails the request. The item schema documents the intended shape and
admits anything (``anyOf`` with ``{}``), which is the truth."""


def heartbeat_items_are_checked_one_by_one(result, generator, request, public):
    schemas = result.get("components", {}).get("schemas", {})
    batch = schemas.get("HeartbeatBatchRequest")
    if batch and "heartbeats" in batch.get("properties", {}):
        heartbeats = batch["properties"]["heartbeats"]
        item = heartbeats.get("items", {})
        heartbeats["items"] = {
            "anyOf": [item, {}],
            "description": "One heartbeat, as HeartbeatItemRequest. Each item is checked on "
            "its own: a malformed one is listed in the response's `rejected` with its index "
            "and reason, and the others are still accepted.",
        }
        heartbeats["maxItems"] = 1000
    return result
