//! Scaling figure of a fleet (loopback only, bounded in count and time): N Python
//! hello worlds from C concurrent clients, each `POST /api/v1/submissions?wait=true`
//! on one API node (`runbox serve --database postgres://... --workers 0`), run by
//! 1, 2 and 3 worker processes (`runbox worker --concurrency K`); and, in the same
//! run, the same load on `runbox serve` with its embedded SQLite and K local
//! workers, and on one `runbox serve --database postgres://... --workers K`, for
//! the cost PostgreSQL adds per job. Every answer is checked (right
//! output, no id twice) and every submission stored once.
//!
//! It needs a PostgreSQL server it may create databases on:
//! `RUNBOX_TEST_POSTGRES_URL` (`eval "$(scripts/postgres-test-cluster.sh start)"`).
//!
//! cargo build --release -p runbox -p runbox-bench && target/release/fleet [-n 600] [-c 32] [--concurrency 1]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

mod concurrent;

use concurrent::{Report, hammer};

const PYTHON_HELLO: &str = "print('Hello, World!')\n";
/// No request may take longer than this; the whole run is bounded by it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> anyhow::Result<()> {
    let mut n = 600usize;
    let mut clients = 32usize;
    let mut concurrency = 1u32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" => n = args.next().context("-n needs a number")?.parse()?,
            "-c" => clients = args.next().context("-c needs a number")?.parse()?,
            "--concurrency" => {
                concurrency = args
                    .next()
                    .context("--concurrency needs a number")?
                    .parse()?
            }
            other => bail!("unknown argument {other}: use -n N -c CLIENTS --concurrency K"),
        }
    }
    let server_url = std::env::var("RUNBOX_TEST_POSTGRES_URL").context(
        "RUNBOX_TEST_POSTGRES_URL is not set: run `eval \"$(scripts/postgres-test-cluster.sh start)\"`",
    )?;
    let binary = std::env::current_exe()?.with_file_name("runbox");
    if !binary.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p runbox`",
            binary.display()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "machine: {cores} CPUs, load average {} before; {n} requests per row, {clients} concurrent clients, \
         POST /api/v1/submissions?wait=true, loopback; each worker --concurrency {concurrency}",
        load_average()
    );
    println!();
    println!("| nodes | store | jobs at once | throughput | ms/job | p50 | p90 | p99 |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");

    let sqlite = {
        let dir = tempfile::tempdir()?;
        let serve = Node::serve(&binary, dir.path(), None, concurrency)?;
        let report = measure(&serve, n, clients)?;
        row(
            &format!("`serve --workers {concurrency}`"),
            "SQLite",
            concurrency,
            &report,
        );
        serve.stop()?;
        report
    };
    let databases = Databases::new(&server_url)?;
    // The same single process on PostgreSQL: the store's own cost, without the
    // second process of a fleet.
    let single = {
        let database = databases.create("runbox_bench_fleet_single")?;
        let dir = tempfile::tempdir()?;
        let serve = Node::serve(&binary, dir.path(), Some(&database), concurrency)?;
        let report = measure(&serve, n, clients)?;
        row(
            &format!("`serve --workers {concurrency}`"),
            "PostgreSQL",
            concurrency,
            &report,
        );
        serve.stop()?;
        databases.drop(&database)?;
        report
    };
    let mut postgres = Vec::new();
    for workers in 1..=3u32 {
        let database = databases.create(&format!("runbox_bench_fleet_{workers}"))?;
        let dir = tempfile::tempdir()?;
        let api = Node::serve(&binary, dir.path(), Some(&database), 0)?;
        let fleet: Vec<Node> = (0..workers)
            .map(|_| Node::worker(&binary, dir.path(), &database, concurrency))
            .collect::<anyhow::Result<_>>()?;
        let report = measure(&api, n, clients)?;
        row(
            &format!("`serve --workers 0` + {workers} × `worker --concurrency {concurrency}`"),
            "PostgreSQL",
            workers * concurrency,
            &report,
        );
        for node in fleet {
            node.stop()?;
        }
        api.stop()?;
        databases.drop(&database)?;
        postgres.push(report);
    }
    println!();
    let one = &postgres[0];
    println!(
        "PostgreSQL fleet (1 API node + 1 worker) vs serve with SQLite, same {concurrency} job(s) at once: \
         {:+.1} ms/job ({:.1} vs {:.1} ms/job), p50 {:+.1} ms",
        one.ms_per_job() - sqlite.ms_per_job(),
        one.ms_per_job(),
        sqlite.ms_per_job(),
        ms(one.p50) - ms(sqlite.p50),
    );
    println!(
        "one serve process, PostgreSQL vs SQLite: {:+.1} ms/job ({:.1} vs {:.1} ms/job), p50 {:+.1} ms",
        single.ms_per_job() - sqlite.ms_per_job(),
        single.ms_per_job(),
        sqlite.ms_per_job(),
        ms(single.p50) - ms(sqlite.p50),
    );
    println!(
        "scaling: 2 workers {:.2}x, 3 workers {:.2}x the throughput of 1 ({cores} CPUs on this machine)",
        postgres[1].throughput / one.throughput,
        postgres[2].throughput / one.throughput,
    );
    println!("load average after: {}", load_average());
    Ok(())
}

fn row(nodes: &str, store: &str, at_once: u32, report: &Report) {
    println!(
        "| {nodes} | {store} | {at_once} | {:.1}/s | {:.1} | {:.1} ms | {:.1} ms | {:.1} ms |",
        report.throughput,
        report.ms_per_job(),
        ms(report.p50),
        ms(report.p90),
        ms(report.p99),
    );
}

/// `/proc/loadavg`'s first three fields.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A warm-up request, then `n` requests from `clients` threads; checks every
/// answer and that the store holds each submission once.
fn measure(api: &Node, n: usize, clients: usize) -> anyhow::Result<Report> {
    api.run()?;
    let report = hammer(n, clients, || api.run())?;
    let stored = api.total_submissions()?;
    if stored != n as u64 + 1 {
        bail!("{stored} submissions stored for {n} requests and a warm-up");
    }
    Ok(report)
}

/// Creates and drops the bench's databases on the PostgreSQL server.
struct Databases {
    runtime: tokio::runtime::Runtime,
    server: sqlx::PgPool,
    base: String,
}

impl Databases {
    fn new(server_url: &str) -> anyhow::Result<Databases> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let server = runtime
            .block_on(sqlx::PgPool::connect(server_url))
            .context("the PostgreSQL server must answer")?;
        let (base, _) = server_url
            .rsplit_once('/')
            .context("the URL names a database: postgres://USER@HOST:PORT/DB")?;
        Ok(Databases {
            runtime,
            server,
            base: base.to_string(),
        })
    }

    /// A fresh, empty database; its URL.
    fn create(&self, name: &str) -> anyhow::Result<String> {
        self.runtime.block_on(async {
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&self.server)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&self.server)
                .await?;
            anyhow::Ok(())
        })?;
        Ok(format!("{}/{name}", self.base))
    }

    fn drop(&self, url: &str) -> anyhow::Result<()> {
        let name = url.rsplit('/').next().unwrap_or_default();
        self.runtime.block_on(
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&self.server),
        )?;
        Ok(())
    }
}

/// A release `runbox serve` or `runbox worker` on a free loopback port.
struct Node {
    child: Child,
    url: String,
    client: reqwest::blocking::Client,
}

/// Settings of every node: room for every client's job, no rate limit.
const ENV: [(&str, &str); 5] = [
    ("RUNBOX_QUEUE_CAPACITY", "1024"),
    ("RUNBOX_RATE_PER_SECOND", "100000"),
    ("RUNBOX_RATE_BURST", "100000"),
    ("RUNBOX_RATE_MAX_CONCURRENT", "1024"),
    ("RUST_LOG", "error"),
];

impl Node {
    /// `runbox serve` with `workers` local workers, on `database` (else SQLite in `dir`).
    fn serve(
        binary: &PathBuf,
        dir: &std::path::Path,
        database: Option<&str>,
        workers: u32,
    ) -> anyhow::Result<Node> {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--workers", &workers.to_string()]);
        if let Some(url) = database {
            command.args(["--database", url]);
        }
        Self::start(command, "runbox listening on ")
    }

    /// `runbox worker` on `database`.
    fn worker(
        binary: &PathBuf,
        dir: &std::path::Path,
        database: &str,
        concurrency: u32,
    ) -> anyhow::Result<Node> {
        let mut command = Command::new(binary);
        command
            .args(["worker", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--database", database])
            .args(["--concurrency", &concurrency.to_string()]);
        Self::start(command, "runbox worker ")
    }

    fn start(mut command: Command, prefix: &str) -> anyhow::Result<Node> {
        command
            .envs(ENV)
            .env_remove("RUNBOX_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().context("cannot start runbox")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let rest = line
            .trim()
            .strip_prefix(prefix)
            .with_context(|| format!("unexpected first line: {line}"))?;
        let url = rest.rsplit(' ').next().unwrap_or(rest).to_string();
        let client = reqwest::blocking::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Node { child, url, client })
    }

    /// Runs one hello world and waits for it; checks its output; returns its id.
    fn run(&self) -> anyhow::Result<String> {
        let response = self
            .client
            .post(format!("{}/api/v1/submissions?wait=true", self.url))
            .json(&json!({"language": "python", "source": PYTHON_HELLO}))
            .send()?;
        let status = response.status();
        let body: Value = response.json()?;
        if status.as_u16() != 200 {
            bail!("{status}: {body}");
        }
        if body["result"]["run"]["stdout"] != "Hello, World!\n" {
            bail!("wrong answer: {body}");
        }
        body["id"].as_str().map(str::to_string).context("no id")
    }

    fn total_submissions(&self) -> anyhow::Result<u64> {
        let page: Value = self
            .client
            .get(format!("{}/api/v1/submissions?per_page=1", self.url))
            .send()?
            .json()?;
        page["total"].as_u64().context("no total")
    }

    /// SIGTERM (by pid), then waits for a clean exit.
    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("runbox exited with {status}");
        }
        Ok(())
    }
}
