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


# -- an undefined slug variable ------------------------------------------------


def render_with_engine(source, debug, **context):
    from django.template import engines

    engine = engines["django"].engine
    saved, engine.debug = engine.debug, debug
    try:
        return render(source, **context)
    finally:
        engine.debug = saved


@pytest.mark.django_db
def test_an_undefined_slug_variable_is_named_while_debugging():
    make_room()
    with pytest.raises(TemplateSyntaxError) as error:
        render_with_engine("{% liverooms_chat lobby %}", debug=True)
    assert "the variable lobby is not defined" in str(error.value)
    assert '{% liverooms_chat "lobby" %}' in str(error.value)  # what was probably meant


@pytest.mark.django_db
def test_an_undefined_slug_variable_renders_the_notice_and_logs_in_production(caplog):
    make_room()
    html = render_with_engine("{% liverooms_liveblog blog.slug %}", debug=False)
    assert "data-liverooms-unavailable" in html
    [record] = [r for r in caplog.records if r.name == "django_liverooms.templatetags.liverooms"]
    assert "the variable blog.slug is not defined" in record.getMessage()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "context"),
    [
        ("{% liverooms_chat slug %}", {"slug": None}),  # defined: the notice, as before
        ("{% liverooms_chat slug %}", {"slug": ""}),
        ('{% liverooms_chat slug|default:"lobby" %}', {}),  # a filter gives it a value
    ],
)
def test_defined_or_defaulted_variables_do_not_raise(source, context):
    make_room()
    html = render_with_engine(source, debug=True, **context)
    assert "data-liverooms" in html


# -- guests keep their session -------------------------------------------------


def serve_page(source, cookies=None, user=None):
    """One request through SessionMiddleware to a view that renders ``source``."""
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.http import HttpResponse

    request = RequestFactory().get("/")
    request.COOKIES.update(cookies or {})
    request.user = user or AnonymousUser()

    def view(request):
        html = Template("{% load liverooms %}" + source).render(Context({"request": request}))
        return HttpResponse(html)

    response = SessionMiddleware(view)(request)
    return request, response


@pytest.mark.django_db
def test_a_guest_keeps_one_session_and_so_one_name_across_page_loads():
    make_room()
    first, response = serve_page('{% liverooms_chat "lobby" %}')
    cookie = response.cookies.get("sessionid")
    assert cookie is not None and cookie.value == first.session.session_key
    again, response = serve_page('{% liverooms_chat "lobby" %}', {"sessionid": cookie.value})
    assert again.session.session_key == first.session.session_key
    assert "sessionid" not in response.cookies  # nothing new to save


@pytest.mark.django_db
def test_the_session_is_left_alone_for_users_and_live_blogs():
    make_room()
    make_blog()
    _, response = serve_page('{% liverooms_liveblog "match-day" %}')
    assert "sessionid" not in response.cookies  # a live blog needs no guest name
    _, response = serve_page('{% liverooms_chat "lobby" %}', user=make_user())
    assert "sessionid" not in response.cookies


def test_a_request_without_a_session_still_renders(db):
    make_room()
    html = render('{% liverooms_chat "lobby" %}')  # RequestFactory: no session middleware
    assert 'data-liverooms="chat"' in html
