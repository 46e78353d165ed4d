//! Writes a report page to standard output, to look at in a browser:
//! the built-in example, or a `RunReport` kept as JSON.
//!
//! `cargo run -p koppel-report --example render [-- report.json] > report.html`

use koppel_report::{RunReport, render_html};

fn main() {
    let report = match std::env::args_os().nth(1) {
        None => RunReport::example(),
        Some(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                eprintln!("{}: {e}", path.to_string_lossy());
                std::process::exit(2)
            });
            serde_json::from_str(&text).unwrap_or_else(|e| {
                eprintln!("{}: not a run report: {e}", path.to_string_lossy());
                std::process::exit(2)
            })
        }
    };
    print!("{}", render_html(&report));
}
