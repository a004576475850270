"""Seq order under concurrent writers, on a real PostgreSQL server.

Several processes post to one room at once while this test reads the event
table: at every read the seqs it sees must be 1..N with no gap, which is what
"commit order equals seq order" means to a reader.
"""

import sys
import time
import uuid

import pytest

from .conftest import POSTGRES_URL, missing_service
from .processes import Site

WRITERS = 4
MESSAGES_EACH = 50


@pytest.fixture
def postgres_database():
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    name = f"liverooms_seq_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def test_concurrent_writers_commit_in_seq_order(postgres_database):
    import psycopg

    _, url = postgres_database
    site = Site(DATABASE_URL=url)
    site.manage("migrate", "--verbosity=0")
    site.shell(
        "from django_liverooms.models import Room; Room.objects.create(slug='lobby', title='Lobby')"
    )
    writer = (
        "from django_liverooms.models import Room\n"
        "from django_liverooms.streams import Sender, post_message\n"
        "room = Room.objects.get(slug='lobby')\n"
        "sender = Sender(user=None, name='w{n}', key='w{n}')\n"
        f"for i in range({MESSAGES_EACH}): post_message(room, sender, 'm%d' % i, 'w{{n}}-%d' % i)\n"
    )
    try:
        writers = [
            site.start(
                sys.executable, "-m", "django", "shell", "--verbosity=0", "-c", writer.format(n=n)
            )
            for n in range(WRITERS)
        ]
        reads = gaps = 0
        with psycopg.connect(url) as reader:
            while any(w.poll() is None for w in writers) or reads == 0:
                seqs = [
                    row[0]
                    for row in reader.execute(
                        "SELECT seq FROM django_liverooms_roomevent ORDER BY seq"
                    )
                ]
                reader.commit()
                reads += 1
                if seqs != list(range(1, len(seqs) + 1)):
                    gaps += 1
                time.sleep(0.005)
            assert [w.wait() for w in writers] == [0] * WRITERS
            seqs = [
                row[0]
                for row in reader.execute("SELECT seq FROM django_liverooms_roomevent ORDER BY seq")
            ]
            last_seq = reader.execute("SELECT last_seq FROM django_liverooms_room").fetchone()[0]
    finally:
        site.stop()
    assert gaps == 0, f"{gaps} of {reads} reads saw a gap"
    assert seqs == list(range(1, WRITERS * MESSAGES_EACH + 1))
    assert last_seq == WRITERS * MESSAGES_EACH
    assert reads > 1
