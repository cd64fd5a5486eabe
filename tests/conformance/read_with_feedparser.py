#!/usr/bin/env python3
"""What Python's feedparser reads in each feed file named on the command line.

The reference reader for tests/conformance.rs. Prints one JSON document:

    {"feedparser": "6.0.14",
     "files": [{"file": PATH, "scored": true|false, "reason": "...",
                "feed": {"title": ..., "link": ..., "id": ...},
                "entries": [{"title", "link", "id", "published", "summary"}, ...]}]}

- titles are the text a reader sees: markup of an HTML title is stripped and its entities decoded,
  a plain-text title is taken as it is; then NFC and whitespace collapsed;
- a relative entry link is resolved against the feed's link when that is an http(s) URL;
- "link_optional" marks a link feedparser copied from an id that is no http(s) URL (a tag: or
  urn: id, a number): that is no address, so a reader that gives no link agrees too;
- "published" is minutes since the epoch (published, else updated, else created), or null;
- "summary" says whether the entry has a non-empty summary or content.

feedparser is given the bytes, not the path, so nothing is resolved against the file's location;
with `--base URL`, each file is read as if fetched from URL followed by its name (feedparser's
Content-Location), and relative links resolve against that address as a fetched feed's do.
A file feedparser cannot make a feed of (malformed with no entries, or no known format and no
entries) has "scored": false and a reason. feedparser 6.0 does not read JSON Feed; a file whose
first byte is '{' is read by the JSON Feed 1.0/1.1 spec directly (any "version" value, as long as
there is an "items" array).
"""

import calendar
import datetime as dt
import html
import json
import re
import sys
import unicodedata
import urllib.parse
import warnings

import feedparser
from feedparser.datetimes import _parse_date as feedparser_date

warnings.filterwarnings("ignore")

TAG = re.compile(r"<[^>]*>")
SPACE = re.compile(r"\s+")


def plain(value, content_type="text/plain"):
    text = str(value or "")
    if content_type in ("text/html", "application/xhtml+xml"):
        text = html.unescape(TAG.sub("", text))
    text = unicodedata.normalize("NFC", text)
    return SPACE.sub(" ", text).strip()


def detail_type(entry, key):
    detail = entry.get(key + "_detail") or {}
    return detail.get("type") or "text/plain"


def is_http(url):
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def resolve(link, base):
    link = (link or "").strip()
    if not link or not is_http(base):
        return link
    try:
        if urllib.parse.urlsplit(link).scheme:
            return link
        return urllib.parse.urljoin(base, link)
    except ValueError:
        return link


def link_fields(link, ident, base):
    if link and link == ident and not is_http(link):
        return {"link": link, "link_optional": True}
    return {"link": resolve(link, base), "link_optional": False}


def minutes(struct):
    if not struct:
        return None
    try:
        return calendar.timegm(struct) // 60
    except (TypeError, ValueError, OverflowError):
        return None


def first(mapping, *keys):
    for key in keys:
        value = dict.get(mapping, key)
        if value:
            return value
    return None


def text_id(value):
    return value.strip() if isinstance(value, str) else ""


def read_xml(data, out, address):
    headers = {"content-location": address, "content-type": "application/xml"} if address else {}
    try:
        parsed = feedparser.parse(data, response_headers=headers)
    except Exception as e:  # feedparser gave up on the file: not scored
        out["scored"], out["reason"] = False, f"feedparser raised {type(e).__name__}: {e}"
        return
    feed = parsed.get("feed") or {}
    out["feed"] = {
        "title": plain(feed.get("title"), detail_type(feed, "title")),
        **link_fields((feed.get("link") or "").strip(), text_id(feed.get("id")), ""),
        "id": text_id(feed.get("id")),
    }
    base = out["feed"]["link"]
    for entry in parsed.get("entries") or []:
        content = [c for c in entry.get("content") or [] if isinstance(c, dict)]
        has_summary = bool((entry.get("summary") or "").strip()) or any(
            (c.get("value") or "").strip() for c in content
        )
        out["entries"].append({
            "title": plain(entry.get("title"), detail_type(entry, "title")),
            **link_fields((entry.get("link") or "").strip(), text_id(dict.get(entry, "id")), base),
            "id": text_id(dict.get(entry, "id")),
            "published": minutes(first(entry, "published_parsed", "updated_parsed", "created_parsed")),
            "summary": has_summary,
        })
    if not out["entries"]:
        if parsed.get("bozo"):
            error = parsed.get("bozo_exception")
            out["scored"], out["reason"] = False, f"malformed: {error}"
        elif not parsed.get("version") and not out["feed"]["title"]:
            out["scored"], out["reason"] = False, "not a feed"


def json_date(value):
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        stamp = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        return int(stamp.timestamp() // 60)
    except ValueError:
        return minutes(feedparser_date(text))


def read_json(data, out):
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as e:
        out["scored"], out["reason"] = False, f"invalid JSON: {e}"
        return
    if not isinstance(doc, dict) or "version" not in doc or not isinstance(doc.get("items"), list):
        out["scored"], out["reason"] = False, "not a JSON Feed"
        return
    out["feed"] = {
        "title": plain(doc.get("title")),
        "link": (doc.get("home_page_url") or "").strip(),
        "link_optional": False,
        "id": "",
    }
    for item in doc["items"]:
        if not isinstance(item, dict):
            continue
        ident = item.get("id")
        out["entries"].append({
            "title": plain(item.get("title")),
            "link": resolve(item.get("url") or item.get("external_url"), out["feed"]["link"]),
            "link_optional": False,
            "id": str(ident).strip() if ident not in (None, "") else "",
            "published": json_date(item.get("date_published")) or json_date(item.get("date_modified")),
            "summary": any(
                isinstance(item.get(k), str) and item.get(k).strip()
                for k in ("summary", "content_html", "content_text")
            ),
        })


def read(path, address):
    out = {"file": path, "scored": True, "reason": "",
           "feed": {"title": "", "link": "", "link_optional": False, "id": ""}, "entries": []}
    with open(path, "rb") as f:
        data = f.read()
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        read_json(data, out)
    else:
        read_xml(data, out, address)
    return out


def main():
    args = sys.argv[1:]
    base = None
    if args[:1] == ["--base"]:
        base, args = args[1], args[2:]
    files = [read(path, base + path.rsplit("/corpus/", 1)[-1] if base else None) for path in args]
    json.dump({"feedparser": feedparser.__version__, "files": files}, sys.stdout)


if __name__ == "__main__":
    main()
