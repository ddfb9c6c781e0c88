"""What a person sees: the test project in Debian's Chromium, driven by Playwright.

The test project runs on its own (``manage.py runserver`` in a subprocess, on
127.0.0.1, on a database of its own on the test server); these tests only
talk to it through the browser, as a person would.
"""

import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from tests.demo_project import MANAGE, free_port, manage, project_database, wait_until_served

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def one_page_pdf(text: bytes) -> bytes:
    """A valid one-page PDF showing ``text``, with its cross-reference table."""
    stream = b"BT /F1 24 Tf 20 100 Td (" + text + b") Tj ET"
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/MediaBox[0 0 300 200]/Parent 2 0 R"
        b"/Resources<</Font<</F1 4 0 R>>>>/Contents 5 0 R>>",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
        b"<</Length %d>>stream\n%s\nendstream" % (len(stream), stream),
    ]
    pdf, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj%sendobj\n" % (number, body)
    table = b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return (
        pdf
        + b"xref\n0 %d\n0000000000 65535 f \n%strailer<</Size %d/Root 1 0 R>>\n"
        % (
            len(objects) + 1,
            table,
            len(objects) + 1,
        )
        + b"startxref\n%d\n%%%%EOF\n" % len(pdf)
    )


PDF = one_page_pdf(b"Rechnung 2026-001")
SCRIPT = (
    "document.cookie = 'pwned=1; path=/'; localStorage.setItem('pwned', '1'); window.pwned = 1;"
)


@pytest.fixture(scope="module")
def demo():
    """The test project, migrated, with its demo users, served on 127.0.0.1."""
    with project_database("browser") as env:
        manage("demo_user", env=env)
        port = free_port()
        server = subprocess.Popen(
            [*MANAGE, "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_served(url, server)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        # Root in a container: Chromium's own sandbox needs user namespaces it may not have.
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, demo):
    context = browser.new_context(base_url=demo, accept_downloads=True)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo")
    with page.expect_navigation():
        page.click("main form button[type=submit], main form input[type=submit]")
    yield page
    context.close()


def upload(page, name: str, content: bytes, mime: str) -> str:
    """Upload a file through the form; return the URL of its download link."""
    page.goto("/upload/")
    page.fill("input[name=title]", name)
    page.set_input_files("input[name=data]", {"name": name, "mimeType": mime, "buffer": content})
    with page.expect_navigation():
        page.click("main form button[type=submit], main form input[type=submit]")
    assert urlsplit(page.url).path == "/", page.url
    row = page.locator("tr", has_text=name).first
    return row.locator("a[href^='/warehouse/']").first.get_attribute("href")


def test_an_uploaded_file_downloads_with_the_same_bytes_and_its_name(page):
    href = upload(page, "Rechnung März.pdf", PDF, "application/pdf")
    response = page.context.request.get(href)
    assert response.status == 200
    assert response.body() == PDF
    assert "filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf" in response.headers["content-disposition"]


# Chromium's built-in PDF viewer, an extension that shows the file in a frame of its own.
PDF_VIEWER = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/"


def test_a_pdf_opens_inline_in_the_browsers_viewer_despite_the_sandbox(page):
    href = upload(page, "viewer.pdf", PDF, "application/pdf")
    downloads = []
    page.on("download", lambda download: downloads.append(download))
    # With a CSP the viewer never fires "load": wait for the response, then for the viewer.
    response = page.goto(href, wait_until="commit")
    assert response.status == 200
    assert "sandbox" in response.all_headers().get("content-security-policy", ""), (
        response.all_headers()
    )
    assert response.headers["content-disposition"].startswith("inline;")
    deadline = time.monotonic() + 15
    while not any(frame.url.startswith(PDF_VIEWER) for frame in page.frames):
        assert time.monotonic() < deadline, [frame.url for frame in page.frames]
        page.wait_for_timeout(100)
    assert page.evaluate("document.contentType") == "application/pdf"
    assert downloads == []
    if shots := os.environ.get("WAREHOUSE_SCREENSHOTS"):
        page.wait_for_timeout(1000)
        page.screenshot(path=Path(shots) / "pdf-inline.png")


@pytest.mark.parametrize(
    ("name", "mime", "content"),
    [
        ("page.html", "text/html", f"<html><body><script>{SCRIPT}</script></body></html>"),
        (
            "drawing.svg",
            "image/svg+xml",
            f'<svg xmlns="http://www.w3.org/2000/svg"><script>{SCRIPT}</script></svg>',
        ),
    ],
)
def test_uploaded_html_and_svg_never_run_on_the_sites_origin(page, name, mime, content):
    href = upload(page, name, content.encode(), mime)
    with page.expect_download() as download:
        page.evaluate("href => { window.location.href = href; }", href)
    assert download.value.suggested_filename == name
    page.goto("/")
    assert page.evaluate("localStorage.getItem('pwned')") is None
    assert not any(cookie["name"] == "pwned" for cookie in page.context.cookies())


def test_uploaded_javascript_is_never_run_as_a_script(page):
    href = upload(page, "app.js", SCRIPT.encode(), "text/javascript")
    page.goto("/")
    outcome = page.evaluate(
        """href => new Promise(done => {
            const script = document.createElement('script');
            script.src = href;
            script.onload = () => done('loaded');
            script.onerror = () => done('refused');
            document.body.append(script);
        })""",
        href,
    )
    assert outcome == "refused"
    assert page.evaluate("window.pwned") is None


# -- the demo walked through, as its README shows it ----------------------------------

LARGE = 50 << 20  # bytes: an upload long enough that a person wants to see it move
# Names of the archives uploaded (not shown inline: the browser downloads them).
ARCHIVES = (f"Jahresabschluss {year}.zip" for year in itertools.count(2025))


def screenshot(page, name: str) -> None:
    """Keep a picture of the page for the README when WAREHOUSE_SCREENSHOTS names a folder."""
    if shots := os.environ.get("WAREHOUSE_SCREENSHOTS"):
        page.screenshot(path=Path(shots) / name)


def row_of(page, name: str):
    return page.locator("tbody tr", has=page.locator("a", has_text=name))


@pytest.fixture
def large_upload(page, tmp_path):
    """A 50 MiB upload through the form, sent by upload.js at 25 MiB/s; its progress as shown."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    # Throttled, so that the bar is seen part-way whatever the machine's speed.
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": 25 << 20})
    page.goto("/upload/")
    name = next(ARCHIVES)
    page.fill("input[name=title]", f"Accounts in {name}")
    # A file on disk: Playwright passes no buffer of 50 MiB or more.
    archive = tmp_path / name
    archive.write_bytes(bytes(range(256)) * (LARGE // 256))
    page.set_input_files("input[name=data]", archive)
    with page.expect_navigation(timeout=120_000):
        page.click("main form button[type=submit]")
        page.wait_for_function(
            "document.querySelector('progress').value > 0"
            " && document.querySelector('progress').value < 100",
            timeout=60_000,
        )
        during = SimpleNamespace(
            name=name,
            title=f"Accounts in {name}",
            bar=page.locator("progress").get_attribute("value"),
            status=page.locator(".upload-status").inner_text(),
        )
        screenshot(page, "demo-upload.png")
    archive.unlink()  # 50 MiB less on the disk while the other tests run
    cdp.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": -1})
    cdp.detach()
    return during


def test_a_large_upload_shows_a_progress_bar_part_way(large_upload):
    assert 0 < float(large_upload.bar) < 100
    assert large_upload.status.endswith("%)")
    assert " of 50.0 MiB (" in large_upload.status


def test_the_list_shows_the_uploaded_name_and_a_human_size(page, large_upload):
    row = row_of(page, large_upload.name)
    assert row.locator("td.num").inner_text() == "50.0 MiB"
    message = page.locator(".messages").inner_text()
    assert f"Uploaded {large_upload.name} as {large_upload.title}." in message
    screenshot(page, "demo-list.png")


def test_a_download_from_the_list_has_the_uploaded_name(page, large_upload):
    with page.expect_download() as download:
        row_of(page, large_upload.name).locator("a", has_text=large_upload.name).click()
    assert download.value.suggested_filename == large_upload.name
    assert os.path.getsize(download.value.path()) == LARGE


def test_a_staff_member_opens_any_invoices_file_from_the_admin(page, large_upload):
    page.goto("/admin/invoices/invoice/")
    page.locator("#result_list a", has_text=large_upload.title).first.click()
    current = page.locator("p.file-upload a").first
    assert current.inner_text() == large_upload.name
    screenshot(page, "demo-admin.png")
    with page.expect_download() as download:
        current.click()
    assert download.value.suggested_filename == large_upload.name


def test_deleting_from_the_list_removes_the_row_after_naming_the_file(page, large_upload):
    row_of(page, large_upload.name).locator("a", has_text="Delete").click()
    assert large_upload.name in page.locator("main").inner_text()
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert f"Deleted {large_upload.title}." in page.locator(".messages").inner_text()
    assert row_of(page, large_upload.name).count() == 0


def test_another_users_file_shows_the_demos_not_found_page(browser, demo, page):
    href = upload(page, "mine.pdf", PDF, "application/pdf")
    other = browser.new_context(base_url=demo)
    stranger = other.new_page()
    stranger.goto("/accounts/login/")
    stranger.fill("input[name=username]", "other")
    stranger.fill("input[name=password]", "other")
    with stranger.expect_navigation():
        stranger.click("main form button[type=submit]")
    response = stranger.goto(href)
    assert response.status == 404
    assert stranger.locator("h1").inner_text() == "Not found"
    screenshot(stranger, "demo-404.png")
    other.close()
