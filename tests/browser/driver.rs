//! chromedriver, a browser session on it, and what the tests ask of a page.

use crate::common::env::{require, CHROMEDRIVER_ENV};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Desktop and phone widths, as the screenshots are taken.
pub const DESKTOP: (u32, u32) = (1280, 900);
/// A phone's viewport (the `app` terminal).
pub const PHONE: (u32, u32) = (390, 844);

/// A chromedriver process and one headless Chromium session on it.
pub struct Browser {
    /// The session.
    pub client: Client,
    /// chromedriver, killed when the browser is dropped.
    driver: Child,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium at desktop width.
    pub async fn start() -> Self {
        let binary = require(CHROMEDRIVER_ENV);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        // A process group of its own: Chromium, its child, is killed with it, even when a
        // failing test never closes its session.
        let driver = Command::new(&binary)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("Failed to start {binary}: {e}"));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                "--lang=zh-CN",
            ] }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + crate::POLL_FOR;
        let client = loop {
            // chromedriver speaks plain HTTP on loopback: no TLS.
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let connecting = ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            match connecting {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("chromedriver at {url} gave no session: {error}"),
            }
        };
        Self { client, driver }
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    /// The element `css` selects, once it is there. A look-up sent while the page navigates
    /// (a form just sent) is answered "aborted by navigation" rather than "no such element":
    /// either is asked again until `POLL_FOR` has passed.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + crate::POLL_FOR;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(e) if Instant::now() >= deadline => panic!("no element {css}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Clears the field `css` selects and types `value` into it.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("the field clears");
        field.send_keys(value).await.expect("typing");
    }

    /// Clicks the element `css` selects (a button, a link, an option of a select).
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("{css} cannot be clicked: {e}"));
    }

    /// Signs in on the sign-in page at `address`: `fields` filled (selector, value), `options`
    /// chosen (selectors), the form sent; then waits until `landed` (selector, text) shows.
    pub async fn sign_in(
        &self,
        address: &str,
        fields: &[(&str, &str)],
        options: &[String],
        landed: (&str, &str),
    ) {
        self.open(&format!("{address}/signin")).await;
        for (field, value) in fields {
            self.fill(field, value).await;
        }
        for option in options {
            self.click(option).await;
        }
        self.click("form.stack button[type=submit]").await;
        self.wait_for_text(landed.0, landed.1).await;
    }

    /// Opens `url` again until `css` selects something on it.
    pub async fn open_until(&self, url: &str, css: &str) {
        let deadline = Instant::now() + crate::POLL_FOR;
        loop {
            self.open(url).await;
            if self.client.find(Locator::Css(css)).await.is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                let main = self.find("main").await.text().await.unwrap_or_default();
                panic!("{url} never showed {css}:\n{main}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the text of `css` contains `text`; that text.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> String {
        let deadline = Instant::now() + crate::POLL_FOR;
        loop {
            let found = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if found.contains(text) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` shows {found:?}, not {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves the page as `<name>-desktop.png` and `<name>-phone.png` under
    /// `target/screenshots/`, and leaves the window at desktop width.
    pub async fn screenshots(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("the screenshots directory");
        for (width, (w, h)) in [("phone", PHONE), ("desktop", DESKTOP)] {
            self.client
                .set_window_size(w, h)
                .await
                .expect("the window resizes");
            let png = self.client.screenshot().await.expect("a screenshot");
            std::fs::write(dir.join(format!("{name}-{width}.png")), png)
                .expect("the screenshot is saved");
        }
    }

    /// Saves the element `css` selects as `<name>.png` under `target/screenshots/`.
    pub async fn element_screenshot(&self, css: &str, name: &str) {
        let element = self.find(css).await;
        let reference = serde_json::to_value(&element).expect("an element reference");
        self.client
            .execute("arguments[0].scrollIntoView(true);", vec![reference])
            .await
            .expect("the element scrolls into view");
        let png = element
            .screenshot()
            .await
            .expect("a screenshot of the element");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("the screenshots directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is saved");
    }

    /// Ends the session.
    pub async fn close(self) {
        let client = self.client.clone();
        let _ = client.close().await;
    }
}

impl Drop for Browser {
    /// Kills chromedriver's process group: chromedriver and the Chromium it started.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
