"""Bot verdicts: the crawler list, link previews, no agent (their cost: bench/bots.py)."""

from __future__ import annotations

import pytest

from bannertrack.clicks import bots

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.106]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Instagram 340.0.0.22.109",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
]


@pytest.mark.parametrize("agent", BROWSERS)
def test_browsers_are_people(agent: str) -> None:
    assert bots.classify(agent) == bots.HUMAN


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        (None, "no_user_agent"),
        ("", "no_user_agent"),
        ("   ", "no_user_agent"),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "preview:Slackbot"),
        ("facebookexternalhit/1.1", "preview:facebookexternalhit"),
        ("Twitterbot/1.0", "preview:Twitterbot"),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "preview:Discordbot"),
        ("TelegramBot (like TwitterBot)", "preview:TelegramBot"),
        ("WhatsApp/2.23.20.0", "preview:WhatsApp"),
        ("LinkedInBot/1.0 (compatible; Mozilla/5.0)", "preview:LinkedInBot"),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "crawler:Googlebot/",
        ),
        (
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "crawler:bingbot",
        ),
        ("curl/8.5.0", "crawler:curl"),
        ("Wget/1.21", "crawler:Wget"),
        ("Mozilla/5.0 (compatible; SemrushBot/7~bl)", "crawler:SemrushBot"),
    ],
)
def test_bots_are_flagged_with_a_reason(agent: str | None, reason: str) -> None:
    assert bots.classify(agent) == bots.Verdict(True, reason)


def test_every_example_of_the_crawler_list_is_a_bot() -> None:
    import json
    from importlib import resources

    data = resources.files("crawleruseragents").joinpath("crawler-user-agents.json")
    examples = [i for e in json.loads(data.read_text("utf-8")) for i in e.get("instances", [])]
    missed = [a for a in examples if not bots.classify.__wrapped__(a).bot]
    assert len(examples) > 1000 and missed == []
