"""Packaging for django-liverooms.

The version lives in ``django_liverooms/__init__.py`` and is read here as text,
so building never imports the package (or Django).
"""

import re
from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).resolve().parent


# A Markdown link to a file of this repository: [text](docs/x.md#anchor).
RELATIVE_LINK = re.compile(r"\[([^\]]+)\]\((?!https?://|mailto:|#)([^)\s]+)\)")


def long_description() -> str:
    """README.md for the package index, where links relative to the repository
    (docs/*.md, example_project/) lead nowhere: they become the file's name in
    the text ("the protocol (`docs/protocol.md`)"), a path in the sdist.
    There is no public repository URL to link to yet; with one, set
    ``project_urls`` and link there instead."""

    def as_text(link: re.Match) -> str:
        text, target = link.group(1), link.group(2)
        if text.strip("`") in (target, target.split("#")[0]):
            return f"`{target}`"
        return f"{text} (`{target}`)"

    readme = (HERE / "README.md").read_text(encoding="utf-8")
    return RELATIVE_LINK.sub(as_text, readme)


def read_version() -> str:
    source = (HERE / "django_liverooms" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", source, re.MULTILINE)
    if match is None:
        raise RuntimeError("__version__ not found in django_liverooms/__init__.py")
    return match.group(1)


setup(
    name="django-liverooms",
    version=read_version(),
    description="Chat rooms and live blogs for Django, over Django Channels.",
    long_description=long_description(),
    long_description_content_type="text/markdown",
    author="django-liverooms developers",
    # PEP 639 license metadata (setuptools >= 77). It replaces the
    # "License :: OSI Approved :: BSD License" classifier, which setuptools
    # deprecates and refuses alongside a license expression.
    license_expression="BSD-3-Clause",
    license_files=["LICENSE"],
    keywords=["django", "channels", "websocket", "chat", "live blog", "asgi"],
    # Namespace-aware discovery, so the data directories (templates/, static/,
    # locale/) count as part of the package; plain find_packages() makes
    # setuptools warn "Package would be ignored" for each of them.
    packages=find_namespace_packages(
        include=["django_liverooms", "django_liverooms.*"],
        exclude=[
            "*.__pycache__",
            "tests",
            "tests.*",
            "example_project",
            "example_project.*",
            "bench",
            "bench.*",
        ],
    ),
    # Non-Python files shipped in the wheel. MANIFEST.in puts the same files in
    # the sdist; include_package_data then copies them from there.
    package_data={
        "django_liverooms": [
            "py.typed",
            "templates/**/*",
            "static/**/*",
            "locale/*/LC_MESSAGES/*.po",
            "locale/*/LC_MESSAGES/*.mo",
        ]
    },
    include_package_data=True,
    zip_safe=False,
    python_requires=">=3.10",
    install_requires=[
        "Django>=5.2",
        "channels>=4.2",
        # The channel layer for more than one server process, and the
        # presence store (presence.py talks to the layer's Redis).
        "channels-redis>=4.2",
        "django-model-utils>=5.0",
        "nh3>=0.2.14",
    ],
    extras_require={
        # What example_project needs to run.
        "example": ["daphne>=4.1", "psycopg[binary]>=3.1"],
        # python -m bench (docs/performance.md): the servers it compares, with
        # uvicorn's uvloop and httptools, as the published figures were taken.
        "bench": [
            "uvicorn[standard]>=0.50",
            "websockets>=13.0",
            "daphne>=4.1",
            "granian>=2.0",
            "psutil>=5.9",
            "matplotlib>=3.7",
        ],
        # The test suite: WebsocketCommunicator comes with channels; the
        # Redis and PostgreSQL tests use real servers; the live tests run
        # daphne and uvicorn processes and connect to them with websockets.
        "test": [
            "pytest>=8.0",
            "pytest-django>=4.9",
            "pytest-asyncio>=0.24",
            # A hung test fails with its stack instead of stalling the run.
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "daphne>=4.1",
            "uvicorn>=0.30",
            "websockets>=13.0",
            "psycopg[binary]>=3.1",
            # The XSS test drives the system's Chromium (no browser download).
            "playwright>=1.40",
            # tests/test_bench_smoke.py imports the benchmarks, which read
            # process CPU with it.
            "psutil>=5.9",
        ],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Environment :: Web Environment",
        "Framework :: Django",
        "Framework :: Django :: 5.2",
        "Framework :: Django :: 6.0",
        "Framework :: Django :: 6.1",
        "Intended Audience :: Developers",
        "Operating System :: OS Independent",
        "Programming Language :: Python",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Communications :: Chat",
        "Topic :: Internet :: WWW/HTTP :: Dynamic Content",
        "Typing :: Typed",
    ],
)
