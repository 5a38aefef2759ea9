//! `[store]`: the case repository's database (see the `store` module and the README, "Case
//! repository").

use super::Problem;
use serde::{Deserialize, Serialize};

/// The database URL schemes the case repository speaks.
const SCHEMES: [&str; 3] = ["sqlite:", "postgres:", "postgresql:"];

/// The name of the SQLite file in `data_dir` when `url` is empty.
const DEFAULT_SQLITE_FILE: &str = "govfusion.db";

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// The database: `sqlite://…` or `postgres://…` (`postgresql://…`). Empty: an SQLite file
    /// in `data_dir`, so that a process needs no database set up to run.
    pub url: String,
    /// Where this process keeps its files: the SQLite database when `url` is empty.
    pub data_dir: String,
    /// The most connections the repository's pool opens (at least 1).
    pub max_connections: u32,
    /// How many open cases the intake system keeps in memory (at least 1): those that changed
    /// last. Older ones are read back from the repository when a message or a person asks for
    /// them; a case something waits on (its publication, an applicant) stays.
    pub open_cases_in_memory: usize,
    /// How many closed (completed or failed) cases the intake system keeps in memory besides
    /// the open ones; older ones are read back from the repository when asked for.
    pub closed_cases_in_memory: usize,
    /// Whether the supervision system keeps every case it reads in memory, closed ones too.
    /// Off by default: it keeps the cases whose supervision is open and reads the others back
    /// from the repository when a message comes for one, so that its memory follows open work.
    /// On, its own figures cover every case it read since the process started (memory then
    /// grows with every case); the HTTP API's figures come from the repository either way.
    pub supervision_keeps_closed: bool,
    /// Whether every process keeps its systems' snapshots in the store on a bus that outlives
    /// it, takes back only open cases at start and reads the state topic only after the stored
    /// offsets (see `store::state`). On by default; off, a process reads the state topic from
    /// its start at each start.
    pub keep_state: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            data_dir: ".govfusion".into(),
            max_connections: 5,
            open_cases_in_memory: 10_000,
            closed_cases_in_memory: 1_000,
            supervision_keeps_closed: false,
            keep_state: true,
        }
    }
}

impl StoreSettings {
    /// The database URL: `url`, or when it is empty the SQLite file `govfusion.db` in
    /// `data_dir`, created if missing (`mode=rwc`).
    pub fn database_url(&self) -> String {
        let url = self.url.trim();
        if url.is_empty() {
            let dir = self.data_dir.trim_end_matches('/');
            format!("sqlite://{dir}/{DEFAULT_SQLITE_FILE}?mode=rwc")
        } else {
            url.to_owned()
        }
    }

    /// The SQLite file used when `url` is empty.
    pub fn default_sqlite_file(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.data_dir).join(DEFAULT_SQLITE_FILE)
    }

    /// Whether the database is SQLite (else PostgreSQL).
    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The rules these settings break.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let url = self.url.trim();
        if !url.is_empty() && !SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
            // Only the scheme is shown: the rest of the URL may hold a password.
            let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
            problems.push(Problem {
                key: "store.url".into(),
                value: format!("{scheme}:…"),
                problem: "the case repository speaks SQLite (`sqlite://path/to/file.db`) or \
                          PostgreSQL (`postgres://user@host/db`); leave it empty for an SQLite \
                          file in store.data_dir"
                    .into(),
            });
        }
        if url.is_empty() && self.data_dir.trim().is_empty() {
            problems.push(Problem {
                key: "store.data_dir".into(),
                value: String::new(),
                problem: "with store.url empty the SQLite database is kept in this directory: \
                          give one, e.g. \".govfusion\""
                    .into(),
            });
        }
        if self.max_connections == 0 {
            problems.push(Problem {
                key: "store.max_connections".into(),
                value: "0".into(),
                problem: "the repository needs at least one connection".into(),
            });
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_url_is_an_sqlite_file_in_the_data_dir() {
        let settings = StoreSettings {
            data_dir: "/var/lib/govfusion/".into(),
            ..StoreSettings::default()
        };

        assert_eq!(
            settings.database_url(),
            "sqlite:///var/lib/govfusion/govfusion.db?mode=rwc"
        );
        assert!(settings.is_sqlite());
        assert!(settings.problems().is_empty());
    }

    #[test]
    fn postgres_urls_are_taken_and_other_schemes_refused_without_showing_the_url() {
        let postgres = StoreSettings {
            url: "postgresql://govfusion@db/govfusion".into(),
            ..StoreSettings::default()
        };
        let mysql = StoreSettings {
            url: "mysql://root:secret@db/govfusion".into(),
            max_connections: 0,
            ..StoreSettings::default()
        };

        assert!(postgres.problems().is_empty());
        assert!(!postgres.is_sqlite());
        let problems = mysql.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].key, "store.url");
        assert_eq!(problems[0].value, "mysql:…");
        assert_eq!(problems[1].key, "store.max_connections");
    }
}
