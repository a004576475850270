"""Signals for host projects: a user arrived in or left a stream.

Sent once per user, not per tab: ``user_joined`` on a user's first connection
to a stream (across every server process), ``user_left`` when the last one
closes or expires. Arguments::

    sender   the stream's model class (Room or LiveBlog)
    stream   the stream instance
    key      "user:<pk>" for a signed-in user, "conn:<channel>" for a guest
             (guests count per connection)
    user_id  the user's pk, or None for a guest
    name     the name readers see

Receivers run in the process that saw the change: the server process of the
connection, or, for a connection that died without closing (a killed
process), whichever process sweeps it first (a heartbeat, another join, or a
call to ``presence.users()``/``count()``). They may be sync or async; a sync
receiver runs in a thread, and an exception is logged, never raised into the
connection.

::

    from django.dispatch import receiver
    from django_liverooms.signals import user_joined

    @receiver(user_joined)
    def greet(sender, stream, key, user_id, name, **kwargs):
        ...
"""

from django.dispatch import Signal

user_joined = Signal()
user_left = Signal()
