"""A view that saves a live blog entry, for tests that post from a WSGI server process."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from django_liverooms.models import Entry, LiveBlog


@csrf_exempt
@require_POST
def publish_entry(request: HttpRequest, slug: str) -> JsonResponse:
    blog = LiveBlog.objects.get(slug=slug)
    entry = Entry.objects.create(
        blog=blog, title=request.POST["title"], body=request.POST["body"], status="published"
    )
    return JsonResponse({"id": entry.pk})
