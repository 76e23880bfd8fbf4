"""Drives the inspector's page in headless Chromium (selenium + chromium-driver).

Usage: inspector_browser.py INSPECTOR_URL PUBLIC_URL SCREENSHOT_DIR

Sends requests through the tunnel (PUBLIC_URL) and checks on the page that a request
appears live, that the detail view renders its body, that Replay sends it again and
that Edit and replay changes a header the app sees (the app's /headers echoes them).
Prints one line per step and PASS at the end; exits 77 if Chromium cannot start.
"""
import json
import os
import sys
import threading
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

inspector, public, shots = sys.argv[1], sys.argv[2], sys.argv[3]
WAIT = 20


def send(path, body=None, headers=None, timeout=20):
    request = urllib.request.Request(public + path, data=body, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def send_held():
    # A request the app holds (as at a breakpoint), with the caller's deadline, for the
    # list's pending row; the test ends long before the app answers.
    try:
        send("/slow?ms=60000", headers={"x-envoy-expected-rq-timeout-ms": "15000"}, timeout=70)
    except Exception:
        pass


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1500,900", "--force-device-scale-factor=1"):
    options.add_argument(argument)
try:
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
except Exception as error:  # noqa: BLE001 - any failure to start is reported the same way
    print(f"SKIP: chromium could not start: {error}")
    sys.exit(77)

wait = WebDriverWait(driver, WAIT)


def row_ids(text, tag=None):
    """Ids of the list rows whose path cell contains `text` (and `tag`, a replay
    marker), newest first. Asked of the page itself: the live list re-renders its rows,
    so element references go stale between two selenium calls."""
    return driver.execute_script(
        """return [...document.querySelectorAll('#rows tr')]
             .filter(r => r.querySelector('td.path').textContent.includes(arguments[0])
                       && (arguments[1] === null || r.querySelector('td.path').textContent.includes(arguments[1])))
             .map(r => r.dataset.id);""", text, tag)


def row_text(row_id):
    return driver.execute_script(
        "const r = document.querySelector(`#rows tr[data-id='${arguments[0]}']`); return r ? r.textContent : '';",
        row_id)


def click(selector):
    """Clicks what `selector` finds, again if the page re-rendered it under the click."""
    def attempt(_):
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return True
        except (StaleElementReferenceException, NoSuchElementException):
            return False
    wait.until(attempt)


def open_detail(row_id, path):
    click(f"#rows tr[data-id='{row_id}'] td.path")
    wait.until(lambda d: d.execute_script(
        "const h = document.querySelector('#detail h2'); return h && h.textContent.includes(arguments[0]);", path))


try:
    driver.get(inspector)
    wait.until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
    print("page loaded and live")

    send("/hello")
    order = json.dumps({"user": "ada", "items": [1, 2, 3], "note": "sent from the browser test"}).encode()
    send("/echo", body=order, headers={"content-type": "application/json"})
    send("/headers", headers={"x-user": "debug"})
    send("/echo", body=b"name=Ada+Lovelace&lang=swift",
         headers={"content-type": "application/x-www-form-urlencoded"})
    send("/download?bytes=1500")
    threading.Thread(target=send_held, daemon=True).start()
    # No reload: the rows come from the live feed.
    wait.until(lambda d: row_ids("/slow") and len(row_ids("/echo")) == 2 and row_ids("/headers"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "rows"), "s left"))
    print("requests appeared live, the held one pending with its deadline")
    driver.save_screenshot(os.path.join(shots, "inspector-list.png"))

    echo_id = row_ids("/echo")[-1]  # newest first: the JSON one was sent before the form
    open_detail(echo_id, "/echo")
    wait.until(EC.text_to_be_present_in_element((By.ID, "resp-body"), '"user": "ada"'))
    body = driver.find_element(By.ID, "req-body").text
    assert '"items": [\n    1,' in body, f"the JSON body is not pretty-printed: {body!r}"
    print("detail view renders the JSON body pretty-printed")
    driver.save_screenshot(os.path.join(shots, "inspector-detail.png"))

    click("#replay")
    wait.until(lambda d: row_ids("/echo", f"↻ #{echo_id}"))
    replay_id = row_ids("/echo", f"↻ #{echo_id}")[0]
    wait.until(lambda d: "200" in row_text(replay_id))
    print(f"replay of #{echo_id} listed as #{replay_id}")

    click(f"#rows tr[data-id='{echo_id}'] input[type=checkbox]")
    click(f"#rows tr[data-id='{replay_id}'] input[type=checkbox]")
    click("#compare")
    view = wait.until(EC.presence_of_element_located((By.ID, "compare-view")))
    assert view.text.count("status 200") == 2, f"the compare view lacks a response: {view.text!r}"
    print("compare view shows the two responses side by side")

    driver.find_element(By.ID, "f-path").send_keys("/headers")
    wait.until(lambda d: len(row_ids("")) == len(row_ids("/headers")) == 1)
    driver.execute_script(
        "const f = document.getElementById('f-path'); f.value = ''; f.dispatchEvent(new Event('input'));")
    print("the path filter keeps only matching rows")

    headers_id = row_ids("/headers")[0]
    open_detail(headers_id, "/headers")
    click("#edit")
    field = wait.until(EC.presence_of_element_located((By.ID, "edit-headers")))
    field.send_keys("\nx-edited: from-the-browser")
    click("#edit-send")
    link = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#replay-note a")))
    edited_id = link.text.lstrip("#")
    open_detail(edited_id, "/headers")
    wait.until(EC.text_to_be_present_in_element((By.ID, "resp-body"), "x-edited: from-the-browser"))
    print(f"edit and replay of #{headers_id} as #{edited_id}: the app saw x-edited")
    print("PASS")
finally:
    driver.quit()
