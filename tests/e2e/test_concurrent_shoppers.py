"""Shoppers pressing "Try it on" at the same instant, on a real server over PostgreSQL:
no answer is a 500, every guest gets their try-on, a double click is paid once."""

from django.test import Client

from django_tryon import quota
from django_tryon.models import DailyUsage, TryOnJob
from tests.support.concurrent_shoppers import post_at_once
from tests.support.images import photo_bytes
from tests.support.processes import free_port, process_env, wait_for_port

GUESTS = 16


def test_concurrent_shoppers_get_no_500_and_a_double_click_is_paid_once(
    garment, processes, media_root, django_user_model
):
    env = process_env(
        tryon={"API_KEY": "k", "BASE_URL": "https://api.tryon.test", "THROTTLE_RATE": None},
        media_root=media_root,
    )
    port = free_port()
    server = processes.manage(
        "server", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks", env=env
    )
    wait_for_port(port)
    base = f"http://127.0.0.1:{port}"
    shopper = Client()
    shopper.force_login(django_user_model.objects.create_user("ana"))
    photos = [photo_bytes(color=(n * 15, 90, 200)) for n in range(GUESTS)]

    guests = post_at_once(base, garment.pk, photos)
    twins = post_at_once(
        base, garment.pk, [photos[0]] * 6, {"sessionid": shopper.cookies["sessionid"].value}
    )
    server.stop()

    assert guests == [201] * GUESTS, server.output
    assert sorted(twins) == [200] * 5 + [201], server.output
    assert "Traceback" not in server.output
    assert TryOnJob.objects.count() == GUESTS + 1
    # Every guest counted once on the shared counters, under their row locks.
    assert DailyUsage.objects.get(key=quota.ALL_GUESTS_KEY).count == GUESTS
    assert DailyUsage.objects.get(key=quota.address_key("127.0.0.1")).count == GUESTS
