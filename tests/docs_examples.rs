//! Executable documentation: every shell example of `README.md` and `docs/*.md` that calls
//! the local server or DynamoDB Local runs here, against the `local` binary and DynamoDB
//! Local with the demo data of `make run`, and its answer is checked against the one the
//! page prints. A renamed route, flag or field then fails `make test`, not a reader.
//!
//! What runs: each fenced block opened with ```` ```sh ```` that mentions `127.0.0.1`. Each
//! page runs on a table of its own, freshly seeded by `admin --local demo` (as `make run`
//! seeds its own), through a `local` server of its own, its blocks in page order, so the
//! sequences a page prints are the ones it gets. In a block:
//!
//! - a command is a line (joined with the next ones while it ends in `\`) that is not a
//!   comment; it runs with `bash -c` from the repository's root, with `127.0.0.1:8080` (the
//!   server), `http://127.0.0.1:8000` (DynamoDB Local) and `oidc-client-secret-local` (the
//!   table) replaced by this run's, and `cargo run --bin admin --` by the built `admin`;
//! - `export NAME=value ...` and `unset NAME ...` carry over to the page's next commands;
//! - `<clientSecret>` is the last secret an earlier command of the page got,
//!   `<previous clientSecret>` the one before it, `<access_token>` the last access token;
//!   any other `<...>` in a command fails;
//! - the comment right after a command, `# STATUS JSON` (or `# JSON` for a command that is
//!   not a curl), is its answer: the HTTP status must be STATUS and the body must be JSON of
//!   the same shape, with the same keys and the same values, `"..."` standing for any
//!   string or number. A curl or node command without one fails; any other command must exit 0.
//!
//! Beside them: every `events/*.json` the pages name exists, and the events table names
//! every file of `events/`; links between the pages resolve; no page holds what looks
//! like a secret; the README stays a front door (at most 260 lines).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page of docs/, by path relative to the root.
fn pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("a docs/ folder")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn read(page: &str) -> String {
    std::fs::read_to_string(root().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"))
}

/// A fenced block: its info string, its first line's number and its lines.
struct Block {
    info: String,
    line: usize,
    lines: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String, Block)> = None; // (indent, fence, block)
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        match open.take() {
            None => {
                if let Some(rest) = trimmed.strip_prefix("```") {
                    let block = Block { info: rest.trim().to_owned(), line: number + 2, lines: Vec::new() };
                    open = Some((indent.to_owned(), "```".to_owned(), block));
                }
            }
            Some((fence_indent, fence, mut block)) => {
                if trimmed.trim_end() == fence {
                    blocks.push(block);
                } else {
                    block.lines.push(line.strip_prefix(fence_indent.as_str()).unwrap_or(trimmed).to_owned());
                    open = Some((fence_indent, fence, block));
                }
            }
        }
    }
    assert!(open.is_none(), "a fenced block is never closed");
    blocks
}

fn runnable(block: &Block) -> bool {
    block.info == "sh" && block.lines.iter().any(|l| l.contains("127.0.0.1"))
}

/// One command of a block and the answer printed after it, if any.
struct Example {
    command: String,
    line: usize,
    expected: Option<(Option<u16>, Value)>,
}

fn expected_answer(comment: &str) -> Option<(Option<u16>, Value)> {
    let text = comment.strip_prefix("# ")?.trim();
    let (status, json) = match text.split_once(' ') {
        Some((code, rest)) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(code.parse().unwrap()), rest.trim())
        }
        _ => (None, text),
    };
    if !(json.starts_with('{') || json.starts_with('[')) {
        return None;
    }
    Some((status, serde_json::from_str(json).unwrap_or_else(|e| panic!("the answer `{json}` is not JSON: {e}"))))
}

fn examples(block: &Block) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut lines = block.lines.iter().enumerate().peekable();
    let mut after_command = false;
    while let Some((offset, line)) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            after_command = false;
            continue;
        }
        if trimmed.starts_with('#') {
            if after_command && let Some(answer) = expected_answer(trimmed) {
                let last = examples.last_mut().unwrap();
                assert!(last.expected.is_none(), "line {}: two answers for one command", block.line + offset);
                last.expected = Some(answer);
            }
            after_command = false;
            continue;
        }
        let mut command = line.to_owned();
        while command.trim_end().ends_with('\\') {
            let (_, next) =
                lines.next().unwrap_or_else(|| panic!("line {}: a `\\` ends the block", block.line + offset));
            command.push('\n');
            command.push_str(next);
        }
        examples.push(Example { command, line: block.line + offset, expected: None });
        after_command = true;
    }
    examples
}

/// `"..."` matches any string or number; objects need the same keys; everything else is equal.
fn same_shape(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), Value::String(_) | Value::Number(_)) if e == "..." => true,
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len() && e.iter().all(|(key, value)| a.get(key).is_some_and(|v| same_shape(value, v)))
        }
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(e, a)| same_shape(e, a)),
        _ => expected == actual,
    }
}

/// Every clientSecret in an answer, in order.
fn secrets_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("clientSecret", Value::String(secret)) => out.push(secret.clone()),
                    _ => secrets_in(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| secrets_in(item, out)),
        _ => {}
    }
}

fn free_table() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("docs-{}-{nanos}", std::process::id())
}

fn dynamodb_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect(
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test` \
         (or scripts/local-services.sh exec -- cargo nextest run --test docs_examples)",
    )
}

/// The `local` server on a free port, against its own freshly seeded table.
struct Local {
    child: Child,
    port: u16,
    table: String,
}

impl Local {
    fn start() -> Local {
        let table = free_table();
        let seeded = Command::new(env!("CARGO_BIN_EXE_admin"))
            .args(["--local", "demo"])
            .env("TABLE_NAME", &table)
            .stdout(Stdio::null())
            .output()
            .expect("admin runs");
        assert!(seeded.status.success(), "admin --local demo: {}", String::from_utf8_lossy(&seeded.stderr));
        let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
            .args(["--port", "0"])
            .env("TABLE_NAME", &table)
            .env_remove("SECRET_GRACE_SECONDS")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the local server starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let port = loop {
            let line = lines.next().expect("the local server says where it listens").unwrap();
            if let Some(address) = line.strip_prefix("listening on http://") {
                break address.rsplit_once(':').unwrap().1.parse().unwrap();
            }
        };
        std::thread::spawn(move || lines.for_each(drop)); // keep its stderr drained
        Local { child, port, table }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs every runnable example of a page, in order, and checks each answer.
fn run_page(page: &str) {
    let text = read(page);
    let examples: Vec<Example> = blocks(&text).iter().filter(|b| runnable(b)).flat_map(examples).collect();
    assert!(!examples.is_empty(), "{page} has no example to run");
    let local = Local::start();
    let endpoint = dynamodb_endpoint();
    let admin = env!("CARGO_BIN_EXE_admin");
    let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut secrets: Vec<String> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let started = Instant::now();
    for example in &examples {
        let at = format!("{page}:{}", example.line);
        let mut command = example
            .command
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", local.port))
            .replace("http://127.0.0.1:8000", &endpoint)
            .replace("oidc-client-secret-local", &local.table)
            .replace("cargo run --bin admin --", admin);
        if command.contains("<access_token>") {
            let token = tokens.last().unwrap_or_else(|| panic!("{at}: <access_token> before any token was answered"));
            command = command.replace("<access_token>", token);
        }
        for (placeholder, back) in [("<clientSecret>", 1), ("<previous clientSecret>", 2)] {
            if command.contains(placeholder) {
                let secret = secrets
                    .len()
                    .checked_sub(back)
                    .map(|i| secrets[i].clone())
                    .unwrap_or_else(|| panic!("{at}: {placeholder} before enough secrets were answered"));
                command = command.replace(placeholder, &secret);
            }
        }
        if let Some(start) = command.find('<')
            && command[start + 1..].starts_with(|c: char| c.is_ascii_alphabetic())
        {
            panic!("{at}: an unknown placeholder in `{}`", &command[start..]);
        }
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.first() {
            Some(&"export") => {
                for assignment in &words[1..] {
                    let (name, value) = assignment.split_once('=').unwrap_or_else(|| panic!("{at}: {assignment}"));
                    env.insert(name.to_owned(), Some(value.to_owned()));
                }
                continue;
            }
            Some(&"unset") => {
                words[1..].iter().for_each(|name| drop(env.insert((*name).to_owned(), None)));
                continue;
            }
            _ => {}
        }
        let is_curl = words.first() == Some(&"curl");
        let needs_answer = is_curl || command.contains("node ");
        assert!(!needs_answer || example.expected.is_some(), "{at}: a call without the answer it gets (`# ...`)");
        // curl prints the status on a line of its own after the body.
        let script = format!("curl() {{ command curl --max-time 20 -w '\\n%{{http_code}}' \"$@\"; }}\n{command}");
        let mut run = Command::new("timeout");
        run.args(["60", "bash", "-euo", "pipefail", "-c", &script])
            .current_dir(root())
            .env("TABLE_NAME", &local.table)
            .env("AWS_ENDPOINT_URL_DYNAMODB", &endpoint);
        for (name, value) in &env {
            match value {
                Some(value) => run.env(name, value),
                None => run.env_remove(name),
            };
        }
        let output = run.output().expect("bash runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{at}: `{}` failed ({}): {stdout}{stderr}", example.command, output.status);
        let Some((status, expected)) = &example.expected else { continue };
        let (body, got_status) = if is_curl {
            let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
            (
                body.to_owned(),
                Some(code.trim().parse::<u16>().unwrap_or_else(|_| panic!("{at}: no status in {stdout}"))),
            )
        } else {
            (stdout.clone(), None)
        };
        if let Some(status) = status {
            assert_eq!(got_status, Some(*status), "{at}: the status of `{}` (body {body})", example.command);
        }
        let actual: Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("{at}: `{}` answered {body:?}, not JSON: {e}", example.command));
        if !same_shape(expected, &actual) {
            let shown = serde_json::to_string(&actual).unwrap();
            let mut seen = Vec::new();
            secrets_in(&actual, &mut seen);
            let shown = seen.iter().fold(shown, |text, secret| text.replace(secret, "<a secret>"));
            let shown = match actual.get("access_token").and_then(Value::as_str) {
                Some(token) => shown.replace(token, "<a token>"),
                None => shown,
            };
            panic!("{at}: `{}`\n  the page says {expected}\n  the server said {shown}", example.command);
        }
        if let Some(token) = actual.get("access_token").and_then(Value::as_str) {
            tokens.push(token.to_owned());
        }
        let before = secrets.len();
        secrets_in(&actual, &mut secrets);
        for secret in &secrets[before..] {
            assert!(secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_alphanumeric()), "{at}: {secret:?}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60), "{page}'s examples took {:?}", started.elapsed());
}

/// The pages whose examples run, each in a test of its own (side by side under nextest).
const RUN: &[&str] =
    &["README.md", "docs/api.md", "docs/data-model.md", "docs/import.md", "docs/oauth.md", "docs/verification.md"];

#[test]
fn the_readme_examples_answer_as_printed() {
    run_page("README.md");
}

#[test]
fn the_api_examples_answer_as_printed() {
    run_page("docs/api.md");
}

#[test]
fn the_data_model_examples_answer_as_printed() {
    run_page("docs/data-model.md");
}

#[test]
fn the_import_examples_answer_as_printed() {
    run_page("docs/import.md");
}

#[test]
fn the_oauth_examples_answer_as_printed() {
    run_page("docs/oauth.md");
}

#[test]
fn the_verification_examples_answer_as_printed() {
    run_page("docs/verification.md");
}

#[test]
fn every_page_with_a_local_example_is_run_and_none_hides_one() {
    for page in pages() {
        let blocks = blocks(&read(&page));
        let has_runnable = blocks.iter().any(runnable);
        assert_eq!(has_runnable, RUN.contains(&page.as_str()), "{page}: add it to RUN, or remove it from RUN");
        for block in &blocks {
            let calls_local = block.lines.iter().any(|l| l.contains("127.0.0.1") && l.contains("curl"));
            assert!(
                !calls_local || block.info == "sh",
                "{page}:{}: a call of the local server in a ```{} block, which no test runs",
                block.line,
                block.info
            );
        }
    }
}

/// `events/NAME.json` and bare `NAME.json` in backticks, as the pages name sample events.
fn named_event_files(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices(".json") {
        let start = text[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '/' || c == '{' || c == '}'))
            .map_or(0, |p| p + 1);
        let name = &text[start..i + 5];
        let before = text[..start].chars().last();
        if let Some(file) = name.strip_prefix("events/") {
            names.insert(file.to_owned());
        } else if before == Some('`') && !name.contains('/') && !name.starts_with("package") {
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn every_event_file_the_pages_name_exists_and_the_events_table_names_them_all() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let mut named = BTreeSet::new();
    for page in pages() {
        for name in named_event_files(&read(&page)) {
            if name.contains('{') || name.contains('*') {
                continue; // a pattern such as `rotation-{step}-secret.json`
            }
            assert!(on_disk.contains(&name), "{page} names events/{name}, which does not exist");
            named.insert(name);
        }
    }
    let missing: Vec<&String> = on_disk.difference(&named).collect();
    assert!(missing.is_empty(), "events/ files no page names (add them to the events table): {missing:?}");
}

/// The anchors GitHub gives a page's headings: lower case, spaces as `-`, other
/// punctuation dropped.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_block = false;
    let mut anchors = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        }
        if in_block || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        anchors.insert(slug);
    }
    anchors
}

#[test]
fn links_between_the_pages_resolve() {
    for page in pages() {
        let text = read(&page);
        let dir = Path::new(&page).parent().unwrap_or(Path::new(""));
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let target = &rest[..rest.find(')').unwrap_or(rest.len())];
            if target.starts_with("http") || target.starts_with('#') || target.contains(' ') {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let path: PathBuf = root().join(dir).join(file);
            assert!(path.exists(), "{page}: the link `{target}` leads nowhere");
            if !anchor.is_empty() {
                let target_text = std::fs::read_to_string(&path).unwrap();
                assert!(anchors(&target_text).contains(anchor), "{page}: no heading `#{anchor}` in {file}");
            }
        }
    }
}

#[test]
fn no_page_holds_a_secret_and_the_readme_stays_short() {
    for page in pages() {
        let text = read(&page);
        for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            let mixed = word.bytes().any(|b| b.is_ascii_digit()) && word.bytes().any(|b| b.is_ascii_alphabetic());
            assert!(!(word.len() >= 32 && mixed), "{page}: `{word}` looks like a secret");
        }
    }
    let lines = read("README.md").lines().count();
    assert!(lines <= 260, "README.md has {lines} lines: move the reference into docs/");
}
