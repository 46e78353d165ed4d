//! The page in a real browser: headless Chromium, driven over WebDriver
//! by chromedriver.
//!
//! Console errors are read from the WebDriver browser log
//! (`goog:loggingPrefs`), where Chromium reports `console.error` calls,
//! uncaught exceptions and failed loads with level `SEVERE`. That is
//! structured data, unlike Chromium's `--enable-logging` stderr, which
//! prints every console message, `console.log` and `console.error` alike, as
//! `INFO:CONSOLE` lines among unrelated noise. `console_errors_are_detected`
//! proves the detection on a deliberately broken page.
//!
//! Chromium is taken from `KOPPEL_CHROMIUM` (default `/usr/bin/chromium`),
//! chromedriver from `KOPPEL_CHROMEDRIVER` (default `/usr/bin/chromedriver`).
//! Without them the tests say so and pass, unless `KOPPEL_REQUIRE_CHROMIUM=1`.
//! The screenshot goes to `KOPPEL_SCREENSHOT_DIR` (default: the target
//! directory's `tmp`) as `report-screenshot.png`, and is copied to
//! `/tmp/report.png` for a person to look at.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use koppel_report::{RunReport, render_html};
use serde_json::{Value, json};

const WIDTH: u64 = 1280;

/// One log entry of the browser: level (`SEVERE`, `WARNING`, `INFO`),
/// source (`console-api`, `javascript`, `network`, …) and message.
#[derive(Debug, Clone)]
struct LogEntry {
    level: String,
    source: String,
    message: String,
}

/// A chromedriver process with one Chromium session; both end on drop,
/// also when a test fails half-way.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

fn binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("KOPPEL_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    let driver = std::env::var_os("KOPPEL_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromedriver".into());
    if chromium.is_file() && driver.is_file() {
        return Some((chromium, driver));
    }
    let missing = format!(
        "Chromium ({}) or chromedriver ({}) not found",
        chromium.display(),
        driver.display()
    );
    if std::env::var("KOPPEL_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
        panic!("{missing}, and KOPPEL_REQUIRE_CHROMIUM=1");
    }
    println!("{missing}: browser test skipped (set KOPPEL_REQUIRE_CHROMIUM=1 to fail instead)");
    None
}

/// A minimal blocking HTTP/1.1 exchange with chromedriver on loopback.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    // Bounded, so a hung browser fails the test instead of stalling CI.
    let limit = Some(Duration::from_secs(60));
    stream.set_read_timeout(limit).map_err(|e| e.to_string())?;
    stream.set_write_timeout(limit).map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send {method} {path}: {e}"))?;
    // chromedriver keeps the connection open despite `Connection: close`,
    // so the answer ends where its length says, not at end of stream.
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("read {method} {path}: {e}"))?;
        if n == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let payload = match length {
        Some(n) => {
            let mut body = vec![0; n];
            reader
                .read_exact(&mut body)
                .map_err(|e| format!("read {method} {path}: {e}"))?;
            body
        }
        None if head.contains("transfer-encoding: chunked") => dechunk(&mut reader)?,
        None => return Err(format!("{method} {path}: answer without a length")),
    };
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path}: no status in {head:?}"))?;
    let value: Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("{method} {path}: answer is not JSON: {e}"))?;
    if status != 200 {
        return Err(format!(
            "{method} {path}: HTTP {status}: {}",
            value["value"]
        ));
    }
    Ok(value["value"].clone())
}

fn dechunk(reader: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {line:?}: {e}"))?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).map_err(|e| e.to_string())?;
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..size]);
    }
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let mut driver = Command::new(chromedriver)
            .arg("--port=0")
            // A process group of its own, with Chromium in it: so the
            // browser can be ended with the driver even without a session.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        // Port 0 lets chromedriver pick a free port, which it then prints:
        // no race with other tests for a port chosen beforehand.
        let stdout = driver.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let port = rest.trim_end_matches('.').trim().parse::<u16>().ok();
                    let _ = tx.send(port);
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(port)) => port,
            other => {
                end_group(&mut driver);
                panic!("chromedriver did not report its port: {other:?}");
            }
        };
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={WIDTH},1000"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.to_string_lossy(),
                    "args": args,
                },
                "goog:loggingPrefs": { "browser": "ALL" },
                "timeouts": { "pageLoad": 30000, "script": 30000 },
            }}
        });
        let session = match http(port, "POST", "/session", Some(&capabilities)) {
            Ok(v) => v["sessionId"].as_str().unwrap_or_default().to_string(),
            Err(e) => {
                end_group(&mut driver);
                panic!("no browser session: {e}");
            }
        };
        Browser {
            driver,
            port,
            session,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        http(self.port, method, &path, body.as_ref()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Opens a page and waits for its load event (WebDriver's normal page
    /// load strategy).
    fn open(&self, path: &Path) {
        let url = format!("file://{}", path.display());
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn script(&self, source: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": source, "args": [] })),
        )
    }

    /// The browser log since the last call.
    fn log(&self) -> Vec<LogEntry> {
        let entries = self.call("POST", "/se/log", Some(json!({ "type": "browser" })));
        entries
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_string(),
                source: e["source"].as_str().unwrap_or_default().to_string(),
                message: e["message"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }

    /// Console errors, uncaught exceptions and failed loads: entries of
    /// level SEVERE, collected until `until` says enough or `wait` passes.
    fn errors(&self, wait: Duration, until: impl Fn(&[LogEntry]) -> bool) -> Vec<LogEntry> {
        let start = Instant::now();
        let mut errors = Vec::new();
        loop {
            errors.extend(self.log().into_iter().filter(|e| e.level == "SEVERE"));
            if until(&errors) || start.elapsed() >= wait {
                return errors;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the whole page: the window is made as tall as the page.
    fn screenshot_full_page(&self) -> Vec<u8> {
        let sizes = self.script(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
        );
        let page = sizes[0].as_u64().expect("page height");
        let chrome = sizes[1].as_u64().unwrap_or(0);
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": WIDTH, "height": page + chrome })),
        );
        let encoded = self.call("GET", "/screenshot", None);
        data_encoding::BASE64
            .decode(encoded.as_str().expect("base64 screenshot").as_bytes())
            .expect("screenshot is base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium; then the driver, which this test started.
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        end_group(&mut self.driver);
    }
}

/// Ends chromedriver and whatever of its process group (Chromium) is
/// still running, by the group id this test created.
fn end_group(driver: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", driver.id())])
        .stderr(Stdio::null())
        .status();
    let _ = driver.kill();
    let _ = driver.wait();
}

fn screenshot_dir() -> PathBuf {
    std::env::var_os("KOPPEL_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "screenshot is not a PNG"
    );
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[test]
fn report_loads_without_console_errors_and_screenshots() {
    let Some((chromium, chromedriver)) = binaries() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, render_html(&RunReport::example())).unwrap();

    let browser = Browser::start(&chromium, &chromedriver);
    browser.open(&page);
    let errors = browser.errors(Duration::from_millis(300), |_| false);
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // Every chart was laid out with text in it, and nothing sticks out of
    // the page sideways.
    let layout = browser.script(
        "const charts = [...document.querySelectorAll('svg.chart')];
         return {
           charts: charts.length,
           drawn: charts.filter(s => s.getBoundingClientRect().width > 300).length,
           texts: [...document.querySelectorAll('svg.chart text')]
             .filter(t => t.getComputedTextLength() > 0).length,
           overflow: document.documentElement.scrollWidth - window.innerWidth,
         };",
    );
    assert_eq!(layout["charts"], 8, "{layout}");
    assert_eq!(layout["drawn"], 8, "{layout}");
    assert!(layout["texts"].as_u64().unwrap() > 200, "{layout}");
    assert!(layout["overflow"].as_i64().unwrap() <= 0, "{layout}");

    let png = browser.screenshot_full_page();
    let errors = browser.errors(Duration::ZERO, |_| false);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let (width, height) = png_size(&png);
    assert_eq!(width as u64, WIDTH);
    assert!(height > 3000, "page only {height} px tall");
    assert!(png.len() > 100_000, "screenshot only {} bytes", png.len());

    let out = screenshot_dir();
    std::fs::create_dir_all(&out).unwrap();
    let shot = out.join("report-screenshot.png");
    std::fs::write(&shot, &png).unwrap();
    std::fs::write("/tmp/report.png", &png).unwrap();
    println!("screenshot: {} ({width}×{height})", shot.display());

    // The odd reports load cleanly too: markup-breaking labels, nothing.
    let mut hostile = RunReport::example();
    let evil = r#"Verpleeg- & verzorgingshuizen <VVT> "q" </svg><script>console.error("escaped?")</script>"#;
    hostile
        .coverage
        .iter_mut()
        .for_each(|c| c.sector = evil.into());
    hostile.sources[0].name = evil.into();
    hostile.tables[0].label = evil.into();
    for (name, report) in [("hostile", hostile), ("empty", RunReport::default())] {
        let page = dir.path().join(format!("{name}.html"));
        std::fs::write(&page, render_html(&report)).unwrap();
        browser.open(&page);
        let errors = browser.errors(Duration::from_millis(300), |_| false);
        assert!(errors.is_empty(), "{name}: console errors: {errors:#?}");
        let scripts = browser.script("return document.scripts.length;");
        assert_eq!(scripts, 0, "{name}: a script got into the page");
    }
}

#[test]
fn console_errors_are_detected() {
    let Some((chromium, chromedriver)) = binaries() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><title>broken</title></head><body><p>broken</p>\
         <script>console.log(\"only-info\"); console.error(\"x-marker\"); throw new Error(\"y-marker\")</script>\
         </body></html>",
    )
    .unwrap();
    let browser = Browser::start(&chromium, &chromedriver);
    browser.open(&page);
    let found =
        |errors: &[LogEntry], marker: &str| errors.iter().any(|e| e.message.contains(marker));
    let errors = browser.errors(Duration::from_secs(5), |e| {
        found(e, "x-marker") && found(e, "y-marker")
    });
    assert!(
        found(&errors, "x-marker"),
        "console.error missed: {errors:#?}"
    );
    assert!(
        found(&errors, "y-marker"),
        "uncaught exception missed: {errors:#?}"
    );
    assert!(
        !found(&errors, "only-info"),
        "console.log taken for an error: {errors:#?}"
    );
    assert!(errors.iter().any(|e| e.source == "console-api"));
    assert!(errors.iter().any(|e| e.source == "javascript"));
}
