"""The drop-in tags: {% liverooms_script %}, {% liverooms_chat %}, {% liverooms_liveblog %}."""

import json
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory, override_settings
from django.utils import translation

from django_liverooms import checks
from django_liverooms.models import Room, RoomMember

from .factories import make_blog, make_room, make_user


def render(source, user=None, **context):
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    for name, value in context.pop("request_attrs", {}).items():
        setattr(request, name, value)
    return Template("{% load liverooms %}" + source).render(
        Context({"request": request, **context})
    )


def widget_config(html):
    [raw] = re.findall(r'<script type="application/json">(.*?)</script>', html, re.S)
    return json.loads(raw)


@override_settings(STATIC_URL="/static/")
def test_the_script_tag():
    assert render("{% liverooms_script %}") == (
        '<link rel="stylesheet" href="/static/django_liverooms/liverooms.css">\n'
        '<script type="module" src="/static/django_liverooms/widgets.js"></script>'
    )


@override_settings(STATIC_URL="/static/")
def test_the_script_tag_carries_the_csp_nonce():
    html = render("{% liverooms_script %}", request_attrs={"csp_nonce": 'n0"nce'})
    assert html == (
        '<link rel="stylesheet" href="/static/django_liverooms/liverooms.css" nonce="n0&quot;nce">\n'
        '<script type="module" src="/static/django_liverooms/widgets.js" nonce="n0&quot;nce"></script>'
    )


@override_settings(STATIC_URL="/static/")
def test_the_script_tag_takes_the_nonce_from_the_context():
    html = render("{% liverooms_script %}", csp_nonce="abc")
    assert html.count('nonce="abc"') == 2


@pytest.mark.django_db
def test_a_chat_widget():
    make_room(title="The <Lobby>")
    html = render('{% liverooms_chat "lobby" %}')
    assert 'data-liverooms="chat"' in html
    assert "The &lt;Lobby&gt;" in html
    assert 'maxlength="4000"' in html
    assert '<label class="liverooms-visually-hidden" for="liverooms-chat-lobby-input">' in html
    config = widget_config(html)
    assert config["websocket"] == "/ws/chat/lobby/"
    assert config["history"] == "/live/chat/lobby/messages"
    assert config["stream"] is None
    assert config["strings"]["typing"] == "{name} is typing…"


@pytest.mark.django_db
def test_a_live_blog_widget_from_a_variable():
    make_blog()
    html = render("{% liverooms_liveblog slug %}", slug="match-day")
    assert 'data-liverooms="liveblog"' in html and "Match day" in html
    config = widget_config(html)
    assert config["websocket"] == "/ws/liveblog/match-day/"
    assert config["history"] == "/live/liveblog/match-day/entries"
    assert config["stream"] == "/live/liveblog/match-day/stream"


@pytest.mark.django_db
@override_settings(LIVEROOMS={"WEBSOCKET_PREFIX": "wss://live.example.com/sockets/"})
def test_the_websocket_prefix_setting():
    make_room()
    config = widget_config(render('{% liverooms_chat "lobby" %}'))
    assert config["websocket"] == "wss://live.example.com/sockets/chat/lobby/"


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["nowhere", "Not A Slug", "../x", None, ""])
def test_no_such_stream_renders_a_notice_not_an_error(slug):
    make_room()
    html = render("{% liverooms_chat slug %}", slug=slug)
    assert "data-liverooms-unavailable" in html and "data-liverooms=" not in html
    assert "There is no chat room" in html


@pytest.mark.django_db
def test_a_private_room_shows_its_widget_to_members_only():
    room = Room.objects.create(slug="staff", title="Staff", private=True)
    member, outsider = make_user("member"), make_user("outsider")
    RoomMember.objects.create(room=room, user=member)
    assert 'data-liverooms="chat"' in render('{% liverooms_chat "staff" %}', user=member)
    refused = render('{% liverooms_chat "staff" %}', user=outsider)
    assert "You may not read this." in refused and "Staff" not in refused


@pytest.mark.parametrize(
    "source",
    [
        '{% liverooms_chat "Lobby!" %}',
        "{% liverooms_liveblog '' %}",
        "{% liverooms_chat %}",
        '{% liverooms_chat "lobby" "extra" %}',
    ],
)
def test_bad_tags_fail_when_the_template_is_compiled(source):
    with pytest.raises(TemplateSyntaxError, match="liverooms_"):
        Template("{% load liverooms %}" + source)


@pytest.mark.django_db
def test_the_widget_speaks_the_active_language():
    make_blog()
    with translation.override("zh-hans"):
        html = render('{% liverooms_liveblog "match-day" %}')
    assert "尚未发布任何内容" in html
    assert widget_config(html)["strings"]["readers"] == "读者：{count}"


@pytest.mark.django_db
def test_templates_are_overridable():
    make_room()
    loaders = [
        (
            "django.template.loaders.locmem.Loader",
            {"django_liverooms/chat.html": "<div>mine: {{ stream.title }}</div>"},
        ),
        "django.template.loaders.app_directories.Loader",
    ]
    templates = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {"loaders": loaders},
        }
    ]
    with override_settings(TEMPLATES=templates):
        assert render('{% liverooms_chat "lobby" %}') == "<div>mine: Lobby</div>"


@pytest.mark.parametrize("prefix", ["ws/", "/ws", "", None, "http://example.com/ws/", 5])
def test_a_bad_websocket_prefix_is_reported(prefix):
    with override_settings(LIVEROOMS={"WEBSOCKET_PREFIX": prefix}):
        [error] = checks.check_websocket_prefix()
    assert error.id == "liverooms.E065" and error.hint


@pytest.mark.parametrize("prefix", ["/ws/", "/", "/a/b/", "ws://h:8001/ws/", "wss://h/"])
def test_good_websocket_prefixes_pass(prefix):
    with override_settings(LIVEROOMS={"WEBSOCKET_PREFIX": prefix}):
        assert checks.check_websocket_prefix() == []
