"""What the appeal request bodies must hold that serializers cannot say:
drf-spectacular postprocessing, so the published schema is the real rule
(and schemathesis generates requests the API really accepts)."""

from ..evidence import MAX_LOGS, MAX_SCREENSHOTS

_IMAGES = "image/png, image/jpeg, image/webp"


def _files(properties: dict, name: str, *, max_items: int, content: str) -> None:
    prop = properties[name]
    prop["maxItems"] = max_items
    prop["description"] = f"Files ({content}), at most {max_items}"


def appeal_request_rules(result, generator, request, public):
    schemas = result.get("components", {}).get("schemas", {})
    create = schemas.get("AppealCreateRequest")
    if create:
        props = create["properties"]
        _files(props, "screenshots", max_items=MAX_SCREENSHOTS, content=_IMAGES)
        _files(props, "logs", max_items=MAX_LOGS, content="plain text, UTF-8 or GB 18030")
        props["screenshots"]["minItems"] = 1
        create["required"] = sorted({*create.get("required", []), "screenshots"})
        # Either the disconnect we recorded, or the span the member claims. An
        # unresolved disconnect (no end recorded) also needs claimed_end.
        create["anyOf"] = [
            {"required": ["disconnect"]},
            {"required": ["claimed_start", "claimed_end"]},
        ]
        create["description"] = (
            "Multipart. Either `disconnect` (one of yours, ended) or `claimed_start` and "
            "`claimed_end`: the end at most the policy's appeal window ago (24 h by default) "
            "and not in the future, the span at most 7 days. 1-10 screenshots (JPEG, PNG or "
            "WebP, each at most 10 MB and 40 megapixels, 60 megapixels in total), up to 5 "
            "plain-text logs of at most 2 MB."
        )
    reply = schemas.get("AppealReplyRequest")
    if reply:
        props = reply["properties"]
        _files(props, "screenshots", max_items=MAX_SCREENSHOTS, content=_IMAGES)
        _files(props, "logs", max_items=MAX_LOGS, content="plain text, UTF-8 or GB 18030")
        # A reply says something: a message that is not blank, or a file.
        reply["anyOf"] = [
            {"required": ["message"], "properties": {"message": {"pattern": r"\S"}}},
            {"required": ["screenshots"], "properties": {"screenshots": {"minItems": 1}}},
            {"required": ["logs"], "properties": {"logs": {"minItems": 1}}},
        ]
    for path in ("/api/v1/appeals/", "/api/v1/appeals/{public_id}/replies/"):
        operation = result.get("paths", {}).get(path, {}).get("post")
        if operation:
            operation["requestBody"]["content"]["multipart/form-data"]["encoding"] = {
                "screenshots": {"contentType": _IMAGES},
                "logs": {"contentType": "text/plain"},
            }
    return result
