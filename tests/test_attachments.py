"""Chat attachments (issue 16): upload, reference from a message, serve (attachments.py)."""

import json
import struct
import zlib

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from django_liverooms import attachments, protocol, ratelimit, streams, views, workers
from django_liverooms.models import Attachment, Message, Room, RoomMember, RoomMute

from .factories import make_room, make_user
from .test_consumers import client as socket_client


def tiny_png(size=1):
    """A real PNG, ``size`` pixels square, red."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = tiny_png()


@pytest.fixture(autouse=True)
def media(tmp_path):
    with override_settings(MEDIA_ROOT=tmp_path):
        yield tmp_path


@pytest.fixture(autouse=True)
def fresh_upload_rates(monkeypatch):
    """The upload buckets are the process's; user pks repeat across tests."""
    monkeypatch.setattr(views, "_upload_rates", ratelimit.LocalBuckets())


def upload_url(slug="lobby"):
    return f"/live/chat/{slug}/attachments"


def upload(http, data=PNG, name="photo.png", content_type="image/png", slug="lobby"):
    return http.post(upload_url(slug), {"file": SimpleUploadedFile(name, data, content_type)})


def store(user, room, data=PNG, name="photo.png"):
    """An upload as the view stores it (for the socket tests)."""
    file = SimpleUploadedFile(name, data)
    return attachments.store(room, user, file, attachments.sniff(file))


def signed_in(user):
    http = Client()
    http.force_login(user)
    return http


# Uploading and serving over HTTP ------------------------------------------------


@pytest.mark.django_db
def test_an_upload_is_stored_under_a_random_name_and_served_once_sent(media):
    room, alice, bob = make_room(), make_user("alice"), make_user("bob")
    response = upload(signed_in(alice), name="../../etc/passwd\u202e.png")
    assert response.status_code == 201, response.content
    answer = response.json()
    stored = Attachment.objects.get()
    assert answer == {
        "id": stored.pk,
        "name": "passwd.png",  # no directory, no bidi override
        "type": "image/png",
        "size": len(PNG),
        "url": f"/live/chat/lobby/attachments/{stored.pk}",
    }
    assert stored.file.name.startswith(f"liverooms/attachments/{room.pk}/")
    assert "passwd" not in stored.file.name and stored.file.name.endswith(".png")
    assert (media / stored.file.name).read_bytes() == PNG
    # Before it is sent: its uploader alone.
    assert signed_in(alice).get(answer["url"]).status_code == 200
    assert signed_in(bob).get(answer["url"]).status_code == 404
    sender = streams.Sender(user=alice, name="alice", key=f"user:{alice.pk}")
    streams.post_message(room, sender, "look", "m1", attachments=(stored.pk,))
    for http in (signed_in(bob), Client()):  # a reader, a guest: the room is public
        response = http.get(answer["url"])
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == PNG
        assert response["Content-Type"] == "image/png"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Disposition"].startswith("inline;")


@pytest.mark.django_db
def test_other_files_are_served_as_downloads_of_their_type():
    room, alice = make_room(), make_user("alice")
    http = signed_in(alice)
    text = upload(http, b"minutes of the meeting\n", name="notes.md", content_type="text/html")
    pdf = upload(http, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", name="report", content_type="text/plain")
    assert (text.json()["type"], pdf.json()["type"]) == ("text/plain", "application/pdf")
    sender = streams.Sender(user=alice, name="alice", key=f"user:{alice.pk}")
    ids = (text.json()["id"], pdf.json()["id"])
    streams.post_message(room, sender, "files", "m1", attachments=ids)
    response = Client().get(text.json()["url"])
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"] == 'attachment; filename="notes.md"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert Client().get(pdf.json()["url"])["Content-Type"] == "application/pdf"


@pytest.mark.django_db
@override_settings(LIVEROOMS={"ATTACHMENT_MAX_BYTES": 1000})
def test_a_file_over_the_limit_is_a_413_and_not_stored(media):
    make_room()
    http = signed_in(make_user("alice"))
    # Under limit + the multipart slack by its Content-Length: the upload handler stops it.
    response = upload(http, b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "1000 bytes" in response.json()["error"]["detail"]
    assert upload(http, PNG).status_code == 201  # under it
    assert Attachment.objects.count() == 1


@pytest.mark.django_db
@override_settings(LIVEROOMS={"ATTACHMENT_MAX_BYTES": 1000})
def test_a_content_length_over_the_limit_is_refused_before_the_body_is_read(monkeypatch):
    make_room()
    http = signed_in(make_user("alice"))

    def read_the_body(*args, **kwargs):
        raise AssertionError("the body was read")

    monkeypatch.setattr(attachments, "SizeLimit", read_the_body)
    response = upload(http, b"\x00" * (1000 + attachments.MULTIPART_SLACK + 1))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"<!doctype html><script>alert(1)</script>", "cat.png"),  # HTML renamed
        (b'\n  <svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "logo.png"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "setup.txt"),  # a program
        (b"caf\xe9\n", "latin1.txt"),  # not UTF-8
        (b"", "empty.png"),
    ],
)
def test_a_type_not_found_in_the_bytes_is_a_415(data, name):
    make_room()
    response = upload(signed_in(make_user("alice")), data, name=name, content_type="image/png")
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_type" and "image/png" in error["detail"]
    assert not Attachment.objects.exists()


@pytest.mark.django_db
@override_settings(LIVEROOMS={"ATTACHMENT_TYPES": ["image/png"]})
def test_attachment_types_limits_the_types_accepted():
    make_room()
    http = signed_in(make_user("alice"))
    response = upload(http, b"%PDF-1.4\n", name="a.pdf", content_type="application/pdf")
    assert response.status_code == 415
    assert "application/pdf" in response.json()["error"]["detail"]
    assert upload(http).status_code == 201


@pytest.mark.django_db
def test_the_upload_is_csrf_protected():
    make_room()
    http = Client(enforce_csrf_checks=True)
    http.force_login(make_user("alice"))
    assert upload(http).status_code == 403
    assert not Attachment.objects.exists()
    http.cookies["csrftoken"] = "a" * 32
    file = SimpleUploadedFile("photo.png", PNG)
    response = http.post(upload_url(), {"file": file}, headers={"X-CSRFToken": "a" * 32})
    assert response.status_code == 201


@pytest.mark.django_db
def test_bad_requests():
    make_room()
    http = signed_in(make_user("alice"))
    assert http.get(upload_url()).status_code == 405
    assert http.post(upload_url(), {"other": "x"}).json()["error"]["code"] == "bad_frame"
    assert upload(http, slug="nope").status_code == 404
    assert http.get("/live/chat/lobby/attachments/99").status_code == 404
    assert http.get(f"/live/chat/lobby/attachments/{2**64}").status_code == 404


@pytest.mark.django_db
@override_settings(LIVEROOMS={"ATTACHMENT_RATE": (2, 60)})
def test_uploads_are_rate_limited_per_user():
    make_room()
    alice = make_user("alice")
    assert [upload(signed_in(alice)).status_code for _ in range(3)] == [201, 201, 429]
    assert upload(signed_in(make_user("bob"))).status_code == 201


@pytest.mark.django_db
@override_settings(LIVEROOMS={"ANONYMOUS_CHAT": True})
def test_guests_and_muted_users_may_not_upload():
    room = make_room()
    muted = make_user("muted")
    RoomMute.objects.create(room=room, user=muted)
    response = upload(Client())
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert upload(signed_in(muted)).status_code == 403


# Who may upload and download, by role and room (docs/permissions.md).

ROLES = ["anonymous", "reader", "member", "moderator"]
# (role, room): (upload status, download status)
EXPECTED = {
    ("anonymous", "lobby"): (403, 200),
    ("anonymous", "secret"): (403, 403),
    ("reader", "lobby"): (201, 200),
    ("reader", "secret"): (403, 403),
    ("member", "lobby"): (201, 200),
    ("member", "secret"): (201, 200),
    ("moderator", "lobby"): (201, 200),
    ("moderator", "secret"): (201, 200),
}


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["lobby", "secret"])
@pytest.mark.parametrize("role", ROLES)
def test_who_may_upload_and_download(role, slug):
    room = make_room(slug)
    room.private = slug == "secret"
    room.save()
    owner = make_user("owner")
    RoomMember.objects.create(room=room, user=owner)
    sent = store(owner, room)
    sender = streams.Sender(user=owner, name="owner", key=f"user:{owner.pk}")
    streams.post_message(room, sender, "a photo", "m1", attachments=(sent.pk,))
    http = Client()
    if role != "anonymous":
        user = make_user(role)
        if role != "reader":
            RoomMember.objects.create(room=room, user=user, moderator=role == "moderator")
        http.force_login(user)
    upload_status, download_status = EXPECTED[(role, slug)]
    assert upload(http, slug=slug).status_code == upload_status
    response = http.get(f"/live/chat/{slug}/attachments/{sent.pk}")
    assert response.status_code == download_status
    if download_status == 403:
        assert response.json()["error"]["code"] == "forbidden"


# Deletion ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_removed_messages_files_are_not_served_nor_in_its_frames():
    room, alice = make_room(), make_user("alice")
    sent = store(alice, room)
    sender = streams.Sender(user=alice, name="alice", key=f"user:{alice.pk}")
    posted = streams.post_message(room, sender, "oops", "m1", attachments=(sent.pk,))
    url = f"/live/chat/lobby/attachments/{sent.pk}"
    assert Client().get(url).status_code == 200
    assert "attachments" in json.loads(room.events.get(seq=1).frame)
    Message.objects.get(pk=posted.message_id).delete()
    assert Client().get(url).status_code == 404
    assert signed_in(alice).get(url).status_code == 404  # its uploader neither
    stored = json.loads(room.events.get(seq=1).frame)
    assert stored["redacted"] is True and "attachments" not in stored
    items = Client().get("/live/chat/lobby/messages").json()["items"]
    assert "attachments" not in items[0]


@pytest.mark.django_db
def test_purges_delete_the_files(media, django_capture_on_commit_callbacks):
    room, alice = make_room(), make_user("alice")
    sent, unsent = store(alice, room), store(alice, room)
    sender = streams.Sender(user=alice, name="alice", key=f"user:{alice.pk}")
    streams.post_message(room, sender, "x", "m1", attachments=(sent.pk,))
    paths = [media / sent.file.name, media / unsent.file.name]
    assert all(path.exists() for path in paths)
    with django_capture_on_commit_callbacks(execute=True):
        streams.purge_user(alice.pk)
    assert not any(path.exists() for path in paths)
    assert not Attachment.objects.exists()
    other = store(make_user("bob"), room)
    with django_capture_on_commit_callbacks(execute=True):
        streams.purge_room(room)
    assert not (media / other.file.name).exists()


# Messages with attachments over the socket ---------------------------------------


async def upload_as(user, room, data=PNG, name="photo.png"):
    return await database_sync_to_async(store)(user, room, data, name)


@pytest.mark.django_db(transaction=True)
async def test_a_message_carries_its_attachments_to_every_reader_and_the_history(room):
    alice = await database_sync_to_async(make_user)("alice")
    photo = await upload_as(alice, room)
    notes = await upload_as(alice, room, b"agenda\n", "agenda.txt")
    sender, reader = socket_client("/ws/chat/lobby/", alice), socket_client("/ws/chat/lobby/")
    await sender.open()
    await reader.open()
    frame = {"type": "message", "body": "", "client_id": "m1", "attachments": [photo.pk, notes.pk]}
    await sender.send_frame(frame)
    ack, seen = await sender.receive_frame(), await reader.receive_frame()
    assert ack == seen and ack["type"] == "message" and ack["body"] == ""
    assert ack["attachments"] == [
        {
            "id": photo.pk,
            "name": "photo.png",
            "type": "image/png",
            "size": len(PNG),
            "url": f"/live/chat/lobby/attachments/{photo.pk}",
        },
        {
            "id": notes.pk,
            "name": "agenda.txt",
            "type": "text/plain",
            "size": 7,
            "url": f"/live/chat/lobby/attachments/{notes.pk}",
        },
    ]
    message = await Message.objects.aget()
    bound = Attachment.objects.filter(message=message).values_list("pk", flat=True)
    assert sorted([pk async for pk in bound]) == sorted([photo.pk, notes.pk])
    later = socket_client("/ws/chat/lobby/")
    _, history = await later.open()
    assert history["items"][0]["attachments"] == ack["attachments"]
    # A resend of the same client_id is answered with the stored frame, not refused.
    await sender.send_frame(frame)
    assert await sender.receive_frame() == ack
    for socket in (sender, reader, later):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("whose", ["someone else's", "used already", "another room's", "missing"])
async def test_a_message_naming_an_attachment_not_its_senders_to_send_is_refused(room, whose):
    alice = await database_sync_to_async(make_user)("alice")
    bob = await database_sync_to_async(make_user)("bob")
    other = await database_sync_to_async(make_room)("other", "Other")
    target = {
        "someone else's": lambda: upload_as(bob, room),
        "used already": lambda: upload_as(alice, room),
        "another room's": lambda: upload_as(alice, other),
        "missing": None,
    }[whose]
    attachment_id = (await target()).pk if target else 12345
    socket = socket_client("/ws/chat/lobby/", alice)
    await socket.open()
    if whose == "used already":
        await socket.send_frame(
            {"type": "message", "body": "1st", "client_id": "m0", "attachments": [attachment_id]}
        )
        assert (await socket.receive_frame())["type"] == "message"
    await socket.send_frame(
        {"type": "message", "body": "look", "client_id": "m1", "attachments": [attachment_id]}
    )
    error = await socket.receive_frame()
    assert (error["type"], error["code"], error["client_id"]) == ("error", "bad_frame", "m1")
    assert not await Message.objects.filter(client_id="m1").aexists()
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "attachments",
    [["1"], [1, 1], [1, 2, 3, 4, 5], [0], [True], "1", {"id": 1}],
)
async def test_malformed_attachment_lists_are_bad_frames(room, attachments):
    alice = await database_sync_to_async(make_user)("alice")
    socket = socket_client("/ws/chat/lobby/", alice)
    await socket.open()
    frame = {"type": "message", "body": "x", "client_id": "m1", "attachments": attachments}
    await socket.send_frame(frame)
    error = await socket.receive_frame()
    assert (error["code"], error["client_id"]) == ("bad_frame", "m1")
    await socket.disconnect()


# The pieces ----------------------------------------------------------------------


def test_the_body_may_be_empty_only_with_attachments():
    parsed = protocol.parse('{"type":"message","body":" ","client_id":"c","attachments":[7]}')
    assert parsed == protocol.SendMessage(body="", client_id="c", attachments=(7,))
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse('{"type":"message","body":" ","client_id":"c","attachments":[]}')
    assert refused.value.code == "bad_frame"


def test_a_redacted_message_frame_has_no_attachments():
    frame = protocol.message(
        id=1, slug="s", body="b", author={}, created="t", client_id=None, attachments=[{"id": 2}]
    )
    assert frame["attachments"] == [{"id": 2}]
    assert "attachments" not in protocol.redacted(frame)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("C:\\Users\\me\\holiday photo.png", "holiday photo.png"),
        ("  \t.. ", "file"),
        ("a\x00b\nc.txt", "a b c.txt"),
        ("x" * 300 + ".jpeg", "x" * 195 + ".jpeg"),
        ("report\u202egnp.exe", "report gnp.exe"),
    ],
)
def test_file_names_are_cleaned(given, shown):
    assert attachments.clean_name(given) == shown


@pytest.mark.django_db
def test_a_batch_claims_its_attachments_in_one_query_and_each_once():
    room, alice = make_room(), make_user("alice")
    first, second = store(alice, room), store(alice, room)
    sender = streams.Sender(user=alice, name="alice", key=f"user:{alice.pk}")
    batch = [
        streams.NewMessage(room, sender, "a", "m1", attachments=(first.pk,)),
        streams.NewMessage(room, sender, "b", "m2", attachments=(first.pk, second.pk)),
        streams.NewMessage(room, sender, "c", "m3", attachments=(second.pk,)),
    ]
    with CaptureQueriesContext(connection) as queries:
        results, frames = streams.post_messages(batch)
    table = Attachment._meta.db_table
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and table in q["sql"]]
    assert len(reads) == 1
    assert isinstance(results[1], protocol.ProtocolError) and results[1].code == "bad_frame"
    stored = [json.loads(text) for _, text in frames[room.group_name]]
    assert [(f["body"], [a["id"] for a in f["attachments"]]) for f in stored] == [
        ("a", [first.pk]),
        ("c", [second.pk]),
    ]
    assert Attachment.objects.get(pk=second.pk).message_id == results[2].message_id


@pytest.mark.django_db
def test_worker_mode_binds_attachments_too():
    room, alice = make_room(), make_user("alice")
    sent = store(alice, room)
    sender = streams.Sender(user=alice, name="alice", key=f"user:{alice.pk}")
    command = protocol.SendMessage(body="hi", client_id="w1", attachments=(sent.pk,))
    again = protocol.SendMessage(body="hi", client_id="w2", attachments=(sent.pk,))
    events = [workers.persist_event(room, sender, c, "unused") for c in (command, again)]
    outcomes, _ = workers.store_batch(events)
    assert not outcomes[0][1].duplicate
    assert isinstance(outcomes[1][1], protocol.ProtocolError)
    assert Attachment.objects.get().message_id == outcomes[0][1].message_id
    frame = json.loads(Room.objects.get().events.get(seq=1).frame)
    assert frame["attachments"][0]["id"] == sent.pk


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"ATTACHMENT_MAX_BYTES": 0}, "liverooms.E180"),
        ({"ATTACHMENT_TYPES": ["image/svg+xml"]}, "liverooms.E181"),
        ({"ATTACHMENT_TYPES": "image/png"}, "liverooms.E181"),
        ({"ATTACHMENT_RATE": (0, 1)}, "liverooms.E182"),
    ],
)
def test_system_checks_refuse_bad_settings(settings, error):
    from django.core.management.base import SystemCheckError

    with override_settings(LIVEROOMS=settings), pytest.raises(SystemCheckError) as failed:
        call_command("check")
    assert error in str(failed.value)
