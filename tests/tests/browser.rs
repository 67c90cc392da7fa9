//! The explorer in a real browser: headless Chromium driven through
//! WebDriver (chromedriver), against real nodes on real Postgres.
//!
//! One browser session serves every test (starting Chromium is the slow
//! part), so the tests run one after another under this file's own harness
//! (libtest-mimic: the usual filters and output). Each test has its own
//! node and database, hence its own origin and its own pinned key.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`), or their paths in `SEALCHAIN_CHROMIUM` and
//! `SEALCHAIN_CHROMEDRIVER`; without them every test fails, saying so.
//!
//! Screenshots of the pages go to `target/explorer-screenshots/`, and also
//! to `SEALCHAIN_SCREENSHOTS_DIR` when it is set (relative to the workspace
//! root): `SEALCHAIN_SCREENSHOTS_DIR=docs/screenshots cargo test -p
//! sealchain-tests --test browser` refreshes the README's pictures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use libtest_mimic::{Arguments, Failed, Trial};
use sealchain_tests::{NodeOptions, TestDb, TestNode, fill};
use serde_json::{Value, json};

/// How long a page gets to finish its checks.
const CHECKS_DEADLINE: Duration = Duration::from_secs(30);

const INSTALL: &str = "the browser tests need Chromium and its WebDriver: on Debian or Ubuntu \
`apt-get install chromium chromium-driver`; elsewhere set SEALCHAIN_CHROMIUM to a Chromium or Chrome \
binary and SEALCHAIN_CHROMEDRIVER to the matching chromedriver";

/// A test that drives the shared browser.
type BrowserTest = fn(&Browser);

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // One browser session: one test at a time.
    args.test_threads = Some(1);
    let tests: [(&str, BrowserTest); 4] = [
        (
            "pages_verify_in_the_browser_and_search_finds_a_hash",
            pages_verify_and_search,
        ),
        ("a_tampered_row_turns_its_badges_red", tampering_turns_badges_red),
        ("the_overview_updates_as_blocks_are_sealed", overview_is_live),
        ("a_changed_node_key_fails_until_trusted", changed_key_fails),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            Trial::test(name, move || {
                let browser = browser()?;
                std::panic::catch_unwind(|| test(browser)).map_err(|panic| {
                    let text = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "the test panicked".into());
                    Failed::from(text)
                })
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(Ok(browser)) = BROWSER.get() {
        browser.close();
    }
    conclusion.exit_code()
}

// ------------------------------------------------------------ the browser --

/// Chromium under chromedriver, and the one WebDriver session.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Client,
    driver: Mutex<Option<Child>>,
    _profile: tempfile::TempDir,
}

static BROWSER: OnceLock<Result<Browser, String>> = OnceLock::new();

fn browser() -> Result<&'static Browser, Failed> {
    BROWSER
        .get_or_init(Browser::start)
        .as_ref()
        .map_err(|e| Failed::from(e.clone()))
}

fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(env) {
        return Some(PathBuf::from(path)).filter(|p| p.exists());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

impl Browser {
    fn start() -> Result<Self, String> {
        let chromium = find_binary("SEALCHAIN_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"])
            .ok_or_else(|| format!("no Chromium found; {INSTALL}"))?;
        let chromedriver = find_binary("SEALCHAIN_CHROMEDRIVER", &["chromedriver"])
            .ok_or_else(|| format!("no chromedriver found; {INSTALL}"))?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = sealchain_tests::cluster::free_port();
        // Its own process group, so that it and the browsers it starts can
        // be ended together by its id.
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}; {INSTALL}", chromedriver.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on port {port} within 30 s",
                    chromedriver.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--hide-scrollbars", "--window-size=1280,1000", "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .map_err(|e| format!("starting a Chromium session ({}): {e}; {INSTALL}", chromium.display()))?;
        Ok(Self {
            runtime,
            client,
            driver: Mutex::new(Some(driver)),
            _profile: profile,
        })
    }

    /// Ends the session (Chromium exits), then chromedriver's process group.
    fn close(&self) {
        let client = self.client.clone();
        let _ = self
            .runtime
            .block_on(async move { tokio::time::timeout(Duration::from_secs(10), client.close()).await });
        if let Some(mut driver) = self.driver.lock().unwrap().take() {
            // A negative id names the process group.
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", driver.id())])
                .status();
            let _ = driver.wait();
        }
    }

    /// Runs a test body: its node lives in an actix system on this thread,
    /// the WebDriver session on the browser's runtime.
    fn run<F: Future<Output = ()>>(&self, body: impl FnOnce(Client) -> F) {
        actix_rt::System::new().block_on(body(self.client.clone()));
    }
}

// ------------------------------------------------------------ page helpers --

/// Every check on the page: (name, state, result text).
async fn checks(c: &Client) -> Vec<(String, String, String)> {
    let v = c
        .execute(
            "return [...document.querySelectorAll('[data-check]')].map(e => \
             [e.dataset.check, e.dataset.state, e.querySelector('.result').textContent]) \
             .concat([...document.querySelectorAll('[data-message-check]')].map(e => \
             ['message ' + e.dataset.messageCheck, e.dataset.state, \
              (document.querySelector(`[data-message-result=\"${e.dataset.messageCheck}\"]`) || {}).textContent || '']));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// Waits until no check is idle or running, and returns them.
async fn settled(c: &Client) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + CHECKS_DEADLINE;
    loop {
        let now = checks(c).await;
        let running = now.iter().any(|(_, state, _)| state == "idle" || state == "pending");
        if !running && !now.is_empty() {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the checks did not finish within {CHECKS_DEADLINE:?}: {now:#?}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every check on the page is verified (green).
async fn all_green(c: &Client) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + CHECKS_DEADLINE;
    loop {
        let now = checks(c).await;
        if !now.is_empty() && now.iter().all(|(_, state, _)| state == "ok") {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "not every check turned green within {CHECKS_DEADLINE:?}: {now:#?}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

fn state_of<'a>(checks: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    checks
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, s, t)| (s.as_str(), t.as_str()))
        .unwrap_or_else(|| panic!("no check {name} on the page: {checks:#?}"))
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

/// Waits until `script` (a JavaScript expression) is true.
async fn until(c: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + CHECKS_DEADLINE;
    loop {
        if c.execute(&format!("return Boolean({script});"), vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {CHECKS_DEADLINE:?}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// chromedriver's Chrome DevTools command endpoint, for what WebDriver has
/// no command for (emulating the dark colour scheme).
#[derive(Debug)]
struct Cdp(&'static str, Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.0, "params": self.1}).to_string()),
        )
    }
}

async fn color_scheme(c: &Client, scheme: &str) {
    c.issue_cmd(Cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
    ))
    .await
    .unwrap();
    until(
        c,
        "the colour scheme applies",
        &format!("matchMedia('(prefers-color-scheme: {scheme})').matches"),
    )
    .await;
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Saves a screenshot as `name.png`: of the whole page (up to 4000 pixels
/// high) when `whole`, else of the window.
async fn screenshot(c: &Client, name: &str, whole: bool) {
    let (width, old_height) = c.get_window_size().await.unwrap();
    if whole {
        let height = c
            .execute("return Math.ceil(document.documentElement.scrollHeight);", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(1000)
            .clamp(600, 4000);
        c.set_window_size(width as u32, height as u32).await.unwrap();
    }
    let png = c.screenshot().await.unwrap();
    c.set_window_size(width as u32, old_height as u32).await.unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
    let mut dirs = vec![target.join("explorer-screenshots")];
    if let Some(dir) = std::env::var_os("SEALCHAIN_SCREENSHOTS_DIR") {
        let dir = PathBuf::from(dir);
        dirs.push(if dir.is_absolute() { dir } else { workspace().join(dir) });
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    }
}

// ------------------------------------------------------------------ tests --

/// The overview, a search by block hash, a block page and a message page:
/// every check turns green; screenshots of each.
fn pages_verify_and_search(browser: &Browser) {
    browser.run(|c| async move {
        let db = TestDb::new();
        let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 8)).await;
        let clients = fill::identities(3);
        let receipts = fill::send(&node.client, &node.info, &clients, 29).await;
        let block = node.client.block(2).await.unwrap();

        c.goto(&node.base).await.unwrap();
        let green = all_green(&c).await;
        assert_eq!(state_of(&green, "checkpoint-signature").0, "ok");
        assert_eq!(text(&c, "[data-live=blocks]").await, "3");
        assert_eq!(text(&c, "[data-live=messages]").await, "29");
        until(
            &c,
            "the live feed connects",
            "document.querySelector('[data-live-status]').dataset.state === 'live'",
        )
        .await;
        until(
            &c,
            "a checkpoint of the 29 messages arrives",
            "document.querySelector('[data-live=cp-size]').textContent === '29'",
        )
        .await;
        assert_eq!(state_of(&settled(&c).await, "checkpoint-signature").0, "ok");
        screenshot(&c, "overview", true).await;
        color_scheme(&c, "dark").await;
        screenshot(&c, "overview-dark", true).await;
        color_scheme(&c, "light").await;

        // Search a block hash with the header's search box.
        let q = c.find(Locator::Css("#q")).await.unwrap();
        q.send_keys(&block.summary.hash.to_string()).await.unwrap();
        c.find(Locator::Css("form.search button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(&c, "the search leads to block 2", "location.pathname === '/blocks/2'").await;
        let green = all_green(&c).await;
        for name in [
            "header-hash",
            "block-signature",
            "merkle-root",
            "message-signatures",
            "chain-link",
            "page-fields",
        ] {
            assert_eq!(state_of(&green, name).0, "ok", "{name}");
        }
        assert_eq!(green.iter().filter(|(n, _, _)| n.starts_with("message ")).count(), 8);
        assert!(
            state_of(&green, "merkle-root")
                .1
                .contains(&block.summary.merkle_root.to_string())
        );
        screenshot(&c, "block", true).await;

        // Open a message from the block.
        let seq = receipts[19].seq;
        c.find(Locator::Css(&format!("a[href='/messages/{seq}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(
            &c,
            "the message page opens",
            &format!("location.pathname === '/messages/{seq}'"),
        )
        .await;
        let green = all_green(&c).await;
        for name in [
            "message-signature",
            "leaf-hash",
            "receipt-signature",
            "block-inclusion",
            "checkpoint-signature",
            "log-inclusion",
            "page-fields",
        ] {
            assert_eq!(state_of(&green, name).0, "ok", "{name}");
        }
        // The audit paths shown are the ones checked: 3 hashes in a block of
        // 8, 5 in the log of 29.
        assert_eq!(c.find_all(Locator::Css("[data-path=block] li")).await.unwrap().len(), 3);
        assert_eq!(c.find_all(Locator::Css("[data-path=log] li")).await.unwrap().len(), 5);
        screenshot(&c, "message", true).await;

        // A phone's width: one column, nothing wider than the screen.
        c.set_window_size(390, 844).await.unwrap();
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, json!(0), "the message page scrolls sideways on a phone");
        screenshot(&c, "message-phone", false).await;
        c.set_window_size(1280, 1000).await.unwrap();
        node.stop().await;
    });
}

/// A message changed in Postgres fails its signature, its block's Merkle
/// root and every proof that covers it; a changed header field fails the
/// hash, the signature and the next block's link. What was not touched
/// stays green.
fn tampering_turns_badges_red(browser: &Browser) {
    browser.run(|c| async move {
        let db = TestDb::new();
        let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 4)).await;
        let clients = fill::identities(2);
        fill::send(&node.client, &node.info, &clients, 12).await;
        // Wait for a checkpoint that covers every message.
        let deadline = Instant::now() + CHECKS_DEADLINE;
        while sealchain_tests::get_raw(&node.base, "/checkpoint").await.2.split(|b| *b == b'\n').nth(1) != Some(b"12") {
            assert!(Instant::now() < deadline, "no checkpoint of size 12");
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }

        let changed = db.execute(
            "UPDATE messages SET message = convert_to(replace(convert_from(message, 'UTF8'), '\"unit\":\"C\"', \
             '\"unit\":\"F\"'), 'UTF8') WHERE seq = 5 AND position('\"unit\":\"C\"' IN convert_from(message, 'UTF8')) > 0",
        );
        assert_eq!(changed, 1, "message 5 holds \"unit\":\"C\"");
        c.goto(&format!("{}/blocks/1", node.base)).await.unwrap();
        let now = settled(&c).await;
        assert_eq!(state_of(&now, "message 5").0, "fail");
        assert!(state_of(&now, "message 5").1.contains("signature does not verify"), "{now:#?}");
        for seq in [4, 6, 7] {
            assert_eq!(state_of(&now, &format!("message {seq}")).0, "ok", "{now:#?}");
        }
        let (state, why) = state_of(&now, "message-signatures");
        assert_eq!(state, "fail");
        assert!(why.contains("1 of 4 fail") && why.contains("seq 5"), "{why}");
        let (state, why) = state_of(&now, "merkle-root");
        assert_eq!(state, "fail");
        assert!(why.contains("seq 5"), "{why}");
        // The header itself is untouched.
        for name in ["header-hash", "block-signature", "chain-link", "page-fields"] {
            assert_eq!(state_of(&now, name).0, "ok", "{name}: {now:#?}");
        }
        let badge = c.find(Locator::Css("[data-message-check='5']")).await.unwrap();
        assert_eq!(badge.text().await.unwrap(), "Failed");
        screenshot(&c, "block-tampered", true).await;

        c.goto(&format!("{}/messages/5", node.base)).await.unwrap();
        let now = settled(&c).await;
        for name in ["message-signature", "leaf-hash", "block-inclusion", "log-inclusion"] {
            assert_eq!(state_of(&now, name).0, "fail", "{name}: {now:#?}");
        }
        assert!(state_of(&now, "block-inclusion").1.contains("not to block 1's Merkle root"));
        for name in ["checkpoint-signature", "receipt-signature", "page-fields"] {
            // The receipt signs the stored leaf hash, which was not changed;
            // the message's bytes no longer hash to it (leaf-hash above).
            let expected = if name == "receipt-signature" { "fail" } else { "ok" };
            assert_eq!(state_of(&now, name).0, expected, "{name}: {now:#?}");
        }
        // An untouched message of the same block still proves its place.
        c.goto(&format!("{}/messages/6", node.base)).await.unwrap();
        all_green(&c).await;

        // A header field changed: the block's hash and signature fail, and
        // so does the next block's link to it.
        assert_eq!(db.execute("UPDATE blocks SET sealed_at = sealed_at + 1 WHERE idx = 0"), 1);
        c.goto(&format!("{}/blocks/0", node.base)).await.unwrap();
        let now = settled(&c).await;
        assert_eq!(state_of(&now, "header-hash").0, "fail");
        assert!(state_of(&now, "header-hash").1.contains("a field was changed"));
        assert_eq!(state_of(&now, "block-signature").0, "fail");
        assert_eq!(state_of(&now, "merkle-root").0, "ok");
        c.goto(&format!("{}/blocks/1", node.base)).await.unwrap();
        let now = settled(&c).await;
        assert_eq!(state_of(&now, "chain-link").0, "fail", "{now:#?}");
        node.stop().await;
    });
}

/// The overview follows the event stream: sealed blocks appear, and the
/// counts and checkpoint move, without a reload.
fn overview_is_live(browser: &Browser) {
    browser.run(|c| async move {
        let db = TestDb::new();
        let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 5)).await;
        c.goto(&node.base).await.unwrap();
        until(
            &c,
            "the live feed connects",
            "document.querySelector('[data-live-status]').dataset.state === 'live'",
        )
        .await;
        assert_eq!(text(&c, "[data-live=blocks]").await, "0");
        c.execute("window.notReloaded = true;", vec![]).await.unwrap();

        let clients = fill::identities(2);
        fill::send(&node.client, &node.info, &clients, 10).await;
        until(
            &c,
            "both blocks appear",
            "document.querySelectorAll('[data-latest-blocks] tbody tr').length === 2",
        )
        .await;
        until(
            &c,
            "the block count is 2",
            "document.querySelector('[data-live=blocks]').textContent === '2'",
        )
        .await;
        until(
            &c,
            "the checkpoint covers the 10 messages",
            "document.querySelector('[data-live=cp-size]').textContent === '10'",
        )
        .await;
        let first = text(&c, "[data-latest-blocks] tbody tr:first-child td:first-child").await;
        assert_eq!(first, "1", "the newest block comes first");
        let head = node.client.head().await.unwrap();
        let code = c
            .find(Locator::Css("[data-latest-blocks] tbody tr:first-child code"))
            .await
            .unwrap();
        assert_eq!(code.attr("title").await.unwrap(), Some(head.summary.hash.to_string()));
        assert_eq!(text(&c, "[data-live=messages]").await, "10");
        let now = settled(&c).await;
        assert_eq!(
            state_of(&now, "checkpoint-signature").0,
            "ok",
            "the live checkpoint verifies"
        );
        assert_eq!(
            c.execute("return window.notReloaded === true;", vec![]).await.unwrap(),
            json!(true),
            "the page was reloaded"
        );
        node.stop().await;
    });
}

/// A page that names another node key than the one this browser pinned:
/// the signature checks fail and say so, until the user trusts the new key.
fn changed_key_fails(browser: &Browser) {
    browser.run(|c| async move {
        let db = TestDb::new();
        let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 2)).await;
        fill::send(&node.client, &node.info, &fill::identities(1), 2).await;
        c.goto(&format!("{}/blocks/0", node.base)).await.unwrap();
        all_green(&c).await;
        assert!(text(&c, "[data-pin] .pin-status").await.contains("first visit"));

        // As if this browser had met another node at this address before.
        let other = hex::encode(sealchain_tests::seal::identity().verifying_key().to_bytes());
        c.execute(
            "localStorage.setItem('sealchain.node-key', JSON.stringify({key: arguments[0], origin: arguments[1], since: 0}));",
            vec![json!(other), json!(node.info.origin)],
        )
        .await
        .unwrap();
        c.refresh().await.unwrap();
        let now = settled(&c).await;
        assert_eq!(state_of(&now, "block-signature").0, "fail");
        assert!(state_of(&now, "block-signature").1.contains("not the node key"), "{now:#?}");
        assert_eq!(state_of(&now, "header-hash").0, "ok", "hashes need no key");
        let status = text(&c, "[data-pin] .pin-status").await;
        assert!(status.contains("pinned another key") && status.contains(&other), "{status}");

        c.find(Locator::Css(".pin-forget")).await.unwrap().click().await.unwrap();
        // Only the reloaded page can be all green.
        all_green(&c).await;
        assert!(text(&c, "[data-pin] .pin-status").await.contains("Pinned in this browser since"));
        node.stop().await;
    });
}
