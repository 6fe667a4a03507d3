//! The tour at the top of README.md, run as written: the examples applied as `make run` applies
//! them, then every command of the tour's console blocks in one shell, in order, each one's output
//! compared with what the README shows. Ages, durations, times of day and timestamps may differ;
//! nothing else may, not even a column's spacing beyond one blank. It relabels a node, so
//! hack/e2e.sh runs it alone.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{env, kubectl, kubectl_ok, poll_seen};

/// One command of the tour (with its continuation lines or here-document) and the output the
/// README shows for it.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

const SECTION: &str = "## A tour";
const EXAMPLE_NAMESPACES: [&str; 3] = ["fleet-cn", "fleet-cn-sh", "health-de"];
/// The `DE` node the tour relabels and labels back.
const RELABELLED: &str = "de-berlin-1";

/// The steps of the console blocks of the README's tour section.
fn tour_steps(readme: &str) -> Vec<Step> {
    let start = readme
        .find(&format!("\n{SECTION}\n"))
        .unwrap_or_else(|| panic!("README.md has no section {SECTION:?}"));
    let section = &readme[start + 1..];
    let section = &section[..section[SECTION.len()..]
        .find("\n## ")
        .map_or(section.len(), |end| end + SECTION.len())];
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    let mut heredoc: Option<String> = None;
    let mut continued = false;
    for line in section.lines() {
        if !in_console {
            in_console = line == "```console";
            continue;
        }
        if let Some(end) = &heredoc {
            let step = steps
                .last_mut()
                .expect("a here-document belongs to a command");
            step.command.push('\n');
            step.command.push_str(line);
            if line == end {
                heredoc = None;
            }
            continue;
        }
        if continued {
            let step = steps
                .last_mut()
                .expect("a continuation belongs to a command");
            step.command.push('\n');
            step.command.push_str(line);
            continued = line.ends_with('\\');
            continue;
        }
        if line == "```" {
            in_console = false;
        } else if let Some(command) = line.strip_prefix("$ ") {
            continued = command.ends_with('\\');
            heredoc = command
                .split_once("<<")
                .map(|(_, word)| word.trim().trim_matches('\'').to_owned());
            steps.push(Step {
                command: command.to_owned(),
                expected: Vec::new(),
            });
        } else {
            steps
                .last_mut()
                .expect("output in a console block follows a command")
                .expected
                .push(line.to_owned());
        }
    }
    assert!(!in_console, "an unclosed console block in {SECTION:?}");
    steps
}

/// Whether `run` is the whole of a word that changes from run to run: an age or duration (`3s`,
/// `2m10s`, `250ms`), a time of day (`07:10:02`) or a date or timestamp (`2026-11-30`,
/// `2026-11-30T07:10:02Z`).
fn volatile(run: &str) -> bool {
    let duration = {
        let mut rest = run;
        let mut parts = 0;
        while !rest.is_empty() {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                break;
            }
            rest = &rest[digits..];
            let unit = ["ms", "s", "m", "h", "d"]
                .into_iter()
                .find(|unit| rest.starts_with(unit));
            match unit {
                Some(unit) => rest = &rest[unit.len()..],
                None => break,
            }
            parts += 1;
        }
        parts > 0 && rest.is_empty()
    };
    let clock = run.contains(':')
        && run
            .chars()
            .all(|c| c.is_ascii_digit() || ":TZ.+-".contains(c));
    let date = run.len() >= 10
        && run.as_bytes()[4] == b'-'
        && run.as_bytes()[7] == b'-'
        && run
            .chars()
            .all(|c| c.is_ascii_digit() || ":TZ.+-".contains(c));
    duration || clock || date
}

/// The line with the UID group in volume names (`...-5c1f07a2-0`) made `~`, which differs from
/// run to run like a time.
fn without_uid_groups(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        let group = chars.get(i + 1..i + 9);
        let is_group = chars[i] == '-'
            && chars.get(i + 9) == Some(&'-')
            && group.is_some_and(|g| {
                g.iter()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(c))
                    && g.iter().any(char::is_ascii_digit)
            });
        if is_group {
            out.push_str("-~");
            i += 9;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The line with runs of blanks made one and every volatile word made `~`.
fn normalised(line: &str) -> String {
    let line = without_uid_groups(line);
    let line = line.as_str();
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = chars[i].is_ascii_digit()
            && (i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || "-./".contains(chars[i - 1])));
        if starts_word {
            let end = (i..chars.len())
                .find(|&j| !(chars[j].is_ascii_alphanumeric() || ":.+-".contains(chars[j])))
                .unwrap_or(chars.len());
            let run: String = chars[i..end].iter().collect();
            // A sentence's full stop is not part of the word.
            let (word, stop) = match run.strip_suffix('.') {
                Some(word) => (word.to_owned(), "."),
                None => (run.clone(), ""),
            };
            if volatile(&word) {
                out.push('~');
                out.push_str(stop);
            } else {
                out.push_str(&run);
            }
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The lines of `text` without the blank lines at its end.
fn trimmed(lines: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = lines
        .iter()
        .map(|line| line.trim_end().to_owned())
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

#[test]
fn the_normalisation_hides_times_and_nothing_else() {
    assert_eq!(
        normalised("patient-records   DE   2/2   Violated   Ready   3m10s"),
        "patient-records DE 2/2 Violated Ready ~"
    );
    assert_eq!(
        normalised("since 2026-11-30T07:10:02Z (07:10:02, for 250ms)."),
        "since ~ (~, for ~)."
    );
    assert_eq!(
        normalised("cn-beijing-1 v1.36.3 20Gi 5432"),
        "cn-beijing-1 v1.36.3 20Gi 5432"
    );
    assert_ne!(normalised("Compliant 3s"), normalised("Violated 3s"));
    assert_eq!(
        normalised("PersistentVolume domicile-health-de.patient-records-5c1f07a2-0 de-berlin-1"),
        normalised("PersistentVolume domicile-health-de.patient-records-d713d7d3-0 de-berlin-1")
    );
    assert_ne!(
        normalised("domicile-health-de.patient-records-5c1f07a2-0"),
        normalised("domicile-health-de.patient-records-5c1f07a2-1")
    );
    assert_ne!(normalised("2/2 3s"), normalised("1/2 3s"));
}

#[test]
fn the_readme_tour_is_parsed_into_commands_and_outputs() {
    let steps = tour_steps(
        "# x\n## A tour\ntext\n```console\n$ a \\\n  b\none\n$ c <<EOF\nx\nEOF\ntwo\n```\n## Next\n```console\n$ no\n```\n",
    );
    let got: Vec<(&str, Vec<&str>)> = steps
        .iter()
        .map(|s| {
            (
                s.command.as_str(),
                s.expected.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("a \\\n  b", vec!["one"]), ("c <<EOF\nx\nEOF", vec!["two"])]
    );
}

/// The examples, applied as `make run` applies them, Ready; and gone again afterwards with their
/// namespaces (their retained volumes stay, as after any deletion: the cluster is the test's own).
struct Examples;

impl Examples {
    fn apply(repo: &str) -> Self {
        kubectl_ok(&["apply", "-f", &format!("{repo}/examples/")], None);
        // The examples' own namespaces only: a data centre of a test before this one may still be
        // going with its namespace, and would never turn Ready.
        for ns in EXAMPLE_NAMESPACES {
            kubectl_ok(
                &[
                    "wait",
                    "--for=condition=Ready",
                    "--timeout=120s",
                    "rdc",
                    "--all",
                    "-n",
                    ns,
                ],
                None,
            );
        }
        Self
    }
}

impl Drop for Examples {
    fn drop(&mut self) {
        // A tour that stopped half-way leaves no node relabelled for the tests after it.
        kubectl(
            &[
                "label",
                "node",
                RELABELLED,
                "domicile.node-restriction.kubernetes.io/jurisdiction=DE",
                "--overwrite",
            ],
            None,
        );
        for ns in EXAMPLE_NAMESPACES {
            kubectl(
                &[
                    "delete",
                    "namespace",
                    ns,
                    "--ignore-not-found",
                    "--wait=true",
                ],
                None,
            );
        }
    }
}

#[test]
fn the_readme_tour_works_as_written() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{repo}/README.md")).expect("README.md");
    let steps = tour_steps(&readme);
    assert!(steps.len() >= 8, "the tour has {} commands", steps.len());

    // The README's paths are those of `make run` with the default cache; here they are the test
    // cluster's kubeconfig and a folder with this build's kubectl and domicile.
    let tools = std::env::temp_dir().join(format!("domicile-e2e-tour-{}", std::process::id()));
    std::fs::create_dir_all(&tools).expect("a folder for the tools");
    for (name, target) in [
        ("kubectl", env("KUBECTL")),
        ("domicile", env("DOMICILE_BIN")),
    ] {
        let link = tools.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).expect("a link to the tool");
    }
    let kubeconfig = env("KUBECONFIG");
    let tools_dir = tools.display().to_string();
    let command = |step: &Step| {
        step.command
            .replace("~/.cache/domicile/cluster/admin.kubeconfig", &kubeconfig)
            .replace("~/.cache/domicile/path", &tools_dir)
    };

    let _examples = Examples::apply(repo);
    assert!(
        steps
            .iter()
            .any(|step| step.command.contains(&format!("label node {RELABELLED} "))),
        "the tour relabels {RELABELLED}, which this test labels back if the tour stops half-way"
    );
    // The tour shows the history, which the operator writes once it has placed the replicas.
    poll_seen(
        "the history of health-de/patient-records",
        Duration::from_secs(60),
        || {
            let out = kubectl(
                &[
                    "get",
                    "residencyhistory",
                    "patient-records",
                    "-n",
                    "health-de",
                ],
                None,
            );
            if out.success { Ok(()) } else { Err(out.stderr) }
        },
    );

    let mut script = String::from("exec 2>&1\ncd \"$TOUR_REPO\"\n");
    for (index, step) in steps.iter().enumerate() {
        script.push_str(&format!(
            "printf '\\n@@tour-step {index}\\n'\n{}\n",
            command(step)
        ));
    }
    script.push_str("printf '\\n@@tour-step end\\n'\n");
    let mut child = Command::new("timeout")
        .args(["300", "bash"])
        .env("TOUR_REPO", repo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes())
        .expect("bash reads the script");
    let output = child.wait_with_output().expect("bash runs to the end");
    let _ = std::fs::remove_dir_all(&tools);
    let output = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.contains("@@tour-step end"),
        "the tour did not run to its end (300 s):\n{output}"
    );

    let mut outputs: Vec<Vec<String>> = Vec::new();
    for line in output.lines() {
        if line.starts_with("@@tour-step ") {
            outputs.push(Vec::new());
        } else if let Some(current) = outputs.last_mut() {
            current.push(line.to_owned());
        }
    }
    for (step, got) in steps.iter().zip(&outputs) {
        let expected = trimmed(&step.expected);
        let got = trimmed(got);
        let matches = expected.len() == got.len()
            && expected
                .iter()
                .zip(&got)
                .all(|(e, g)| normalised(e) == normalised(g));
        assert!(
            matches,
            "the README's tour: `{}` printed\n{}\nwhere the README shows\n{}",
            step.command,
            got.join("\n"),
            expected.join("\n")
        );
    }
}
