"""Opens onnx-monoquant's HTML reports in a real headless browser (Debian's chromium driven by
chromium-driver through python3-selenium) and reads back the self-test the page runs when loaded
as FILE#selftest: what it drew, how long that took, the errors it caught. Shared by
tests/e2e/html_report and tools/bench-html."""

import json
import os
import shutil
import time

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'


def browser_missing():
    """Why the browser cannot run here, or None."""
    for p in (CHROMIUM, CHROMEDRIVER):
        if not os.access(p, os.X_OK):
            return f'{p} is missing (apt-get install chromium chromium-driver)'
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'python3-selenium is missing (apt-get install python3-selenium)'
    return None


def open_browser(width=1280, height=2400):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
              '--hide-scrollbars', '--force-device-scale-factor=1', f'--window-size={width},{height}',
              # offline: any attempt to reach the network fails (the page must not try)
              '--proxy-server=127.0.0.1:9', '--no-first-run', '--disable-extensions'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def check_page(driver, path, screenshot=None, timeout=20):
    """Loads path#selftest; returns (selftest dict or None, console messages at level SEVERE or
    WARNING, seconds from navigation to the verdict)."""
    from selenium.webdriver.common.by import By
    driver.get('about:blank')  # a fresh load even when path is the page already shown
    start = time.monotonic()
    driver.get('file://' + os.path.abspath(path) + '#selftest')
    result = None
    while time.monotonic() - start < timeout:
        text = driver.find_element(By.ID, 'mq-selftest').get_attribute('textContent')
        if text:
            result = json.loads(text)
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - start
    logs = [e for e in driver.get_log('browser') if e.get('level') in ('SEVERE', 'WARNING')]
    if screenshot:
        driver.execute_script('window.scrollTo(0, 0)')
        driver.save_screenshot(screenshot)
    return result, logs, elapsed


def chromium_version():
    exe = shutil.which('chromium') or CHROMIUM
    import subprocess
    r = subprocess.run([exe, '--version'], capture_output=True, text=True)
    return r.stdout.strip()
