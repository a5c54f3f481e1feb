"""Shoppers who press "Try it on" at the same instant, against a real server."""

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support.api import GARMENTS_URL, JOBS_URL


def post_at_once(base_url, garment_id, photos, cookies=None):
    """One browser per photo: each reads the garment list (its CSRF cookie), then
    every browser posts its try-on at the same instant. Returns the statuses, in
    the order of ``photos``; ``cookies`` (a session's, say) go with every request."""
    start = threading.Barrier(len(photos))

    def one(photo):
        with requests.Session() as browser:
            browser.cookies.update(cookies or {})
            browser.get(base_url + GARMENTS_URL, timeout=60)
            start.wait(timeout=60)
            answer = browser.post(
                base_url + JOBS_URL,
                data={"garment": garment_id, "consent": "true"},
                files={"person_image": ("me.jpg", photo)},
                headers={"X-CSRFToken": browser.cookies["csrftoken"], "Referer": base_url},
                timeout=60,
            )
            return answer.status_code

    with ThreadPoolExecutor(max_workers=len(photos)) as pool:
        return list(pool.map(one, photos))
