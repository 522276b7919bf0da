"""Hostile text in the mediation bundle (issue 20, item 10). The bundle is
opened by a third party on their own machine: a file name must not escape the
folder it is unpacked into (or be unwritable on Windows), and the HTML summary
must show what the member typed without running any of it."""

import io
import json
import re
import unicodedata
import zipfile
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from appeals.evidence import zip_member_name
from appeals.models import Appeal
from appeals.services import appeal_reject, appeal_staff_message
from appeals.tests.factories import upload

pytestmark = pytest.mark.django_db

DESCRIPTION = (
    "<script>window.__xss=1</script><img src=x onerror=alert(1)>"
    '<a href="javascript:alert(1)">link</a><para><font size=40>big</font></para>'
    "\u202eexe.png " + "X" * 3000 + " 卡盟掉线四十分钟 ]]> {{ 7|add:1 }} {% now 'Y' %}"
)
FILE_NAMES = [
    "../../../../etc/cron.d/evil.png",
    "..\\..\\Windows\\System32\\evil.png",
    "/abs/path.png",
    "C:\\Users\\x\\desk.png",
    "con.png",
    'a:b*c?d"e<f>g|h.png',
    "shot\u202egnp.exe.png",
    "..png",
    "   .png",
    "截图 掉线.png",
    "L" * 300 + ".png",
    "trailing dot. .png",
]


class _Markup(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.handlers, self.js_urls, self.meta = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name))
            if value and re.sub(r"\s", "", value).lower().startswith("javascript:"):
                self.js_urls.append((tag, name))
        if tag == "meta":
            self.meta.append(dict(attrs))


@pytest.fixture
def hostile_bundle(client, member, reviewer, now):
    client.force_login(member.user)
    response = client.post(
        "/api/v1/appeals/",
        {
            "claimed_start": (now - timedelta(minutes=90)).isoformat(),
            "claimed_end": (now - timedelta(minutes=60)).isoformat(),
            "description": DESCRIPTION,
            "screenshots": [upload(name) for name in FILE_NAMES[:10]],
            "logs": [
                upload(name.replace(".png", ".log"), b"ok\n", "text/plain")
                for name in FILE_NAMES[10:]
            ],
        },
    )
    assert response.status_code == 201, response.content
    appeal = Appeal.objects.get(public_id=response.json()["id"])
    appeal_staff_message(
        appeal=appeal, staff=reviewer, message="<b onmouseover=alert(1)>staff</b>", now=now
    )
    appeal_reject(appeal=appeal, staff=reviewer, reason="<script>alert('r')</script>", now=now)
    assert client.post(f"/appeals/{appeal.public_id}/escalate/").status_code in (200, 302)
    response = client.get(f"/appeals/{appeal.public_id}/bundle.zip")
    assert response.status_code == 200
    return appeal, zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


def test_every_member_name_stays_inside_the_folder_on_any_system(hostile_bundle):
    _appeal, archive = hostile_bundle
    names = archive.namelist()
    assert len(names) == len(set(names))
    evidence = [n for n in names if n.startswith("evidence/")]
    assert len(evidence) == len(FILE_NAMES)
    for name in names:
        parts = name.split("/")
        assert not name.startswith("/") and "\\" not in name, name
        assert all(part not in ("", ".", "..") for part in parts), name
        for part in parts:
            assert not set(part) & set(':*?"<>|'), name
            assert not _WINDOWS_RESERVED.match(part), name
            assert not part.endswith((" ", ".")), name
            assert len(part.encode()) <= 200, name
        assert not [ch for ch in name if unicodedata.category(ch)[0] == "C"], name
    # The names still say what the member called the file.
    assert any("截图 掉线" in n for n in evidence)
    assert any(n.endswith("evil.png") for n in evidence)


def test_unpacking_the_bundle_writes_only_inside_the_target(hostile_bundle, tmp_path_factory):
    _appeal, archive = hostile_bundle
    root = tmp_path_factory.mktemp("unpack")
    target = root / "bundle"
    archive.extractall(target)
    written = [p for p in root.rglob("*") if p.is_file()]
    assert len(written) == len(archive.namelist())
    assert all(target in p.parents for p in written)


def test_the_summary_shows_the_members_text_and_runs_none_of_it(hostile_bundle):
    _appeal, archive = hostile_bundle
    summary = archive.read("summary.html").decode()
    parser = _Markup()
    parser.feed(summary)
    assert "script" not in parser.tags and "img" not in parser.tags and "a" not in parser.tags
    assert "para" not in parser.tags and "font" not in parser.tags and "b" not in parser.tags
    assert parser.handlers == [] and parser.js_urls == []
    # Shown escaped, as the member typed it (templates are not evaluated).
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in summary
    assert "{{ 7|add:1 }}" in summary and "{% now &#x27;Y&#x27; %}" in summary
    assert "&lt;b onmouseover=alert(1)&gt;staff&lt;/b&gt;" in summary
    # Opened from disk, the page may load nothing and run nothing.
    csp = [m for m in parser.meta if m.get("http-equiv", "").lower() == "content-security-policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]
    assert "\u202e" not in summary


def test_the_json_files_carry_the_text_exactly_and_parse(hostile_bundle):
    appeal, archive = hostile_bundle
    data = json.loads(archive.read("appeal.json"))
    assert data["description"] == appeal.description
    assert "<script>window.__xss=1</script>" in data["description"]
    json.loads(archive.read("timeline.json"))
    sums = archive.read("SHA256SUMS.txt").decode().splitlines()
    assert len(sums) == len(archive.namelist()) - 1
    assert all(re.fullmatch(r"[0-9a-f]{64}  [^\n\r]+", line) for line in sums)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../x.png", "x.png"),
        ("..\\..\\x.png", "x.png"),
        ("con.png", "_con.png"),
        ("a:b*?.png", "a_b__.png"),
        ("x\u202egnp.exe", "xgnp.exe"),
        ("dots...", "dots"),
        ("", "file"),
        ("..", "file"),
    ],
)
def test_zip_member_name(raw, expected):
    assert zip_member_name(raw) == expected


@pytest.mark.parametrize("text", ["nul\x00inside", "bad \ud800 surrogate"])
def test_a_description_the_database_cannot_store_is_a_400_naming_the_field(
    client, member, now, text
):
    client.force_login(member.user)
    response = client.post(
        "/api/v1/appeals/",
        json.dumps(
            {
                "claimed_start": (now - timedelta(minutes=90)).isoformat(),
                "claimed_end": (now - timedelta(minutes=60)).isoformat(),
                "description": text,
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid" and list(body["fields"]) == ["description"], body
