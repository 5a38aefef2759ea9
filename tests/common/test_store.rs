//! The case repository's tests on both engines: a repository on a database of its own — a
//! SQLite file in the temp dir, or a database created on the `GOVFUSION_TEST_POSTGRES` server,
//! so that tests run in parallel — and [`suite!`], which runs each test on both. Included with
//! `#[macro_use] #[path = "common/test_store.rs"] mod test_store;` by the test binaries of the
//! repository, each of which declares `mod env` (`common/env.rs`).

use govfusion::settings::StoreSettings;
use govfusion::store::CaseRepository;
use sqlx::postgres::PgPool;
use std::path::PathBuf;

/// A repository on a database of its own, and what removes that database.
pub struct TestStore {
    /// The repository under test.
    pub repo: CaseRepository,
    /// How it was opened, to open it again.
    pub settings: StoreSettings,
    /// What to remove when the test is done.
    scratch: Scratch,
}

/// A test's own database.
enum Scratch {
    /// The directory holding the SQLite file.
    Sqlite(PathBuf),
    /// The server's URL, and the database created on it.
    Postgres { admin_url: String, database: String },
}

impl TestStore {
    /// A repository on a fresh SQLite file.
    pub async fn sqlite() -> Self {
        let dir =
            std::env::temp_dir().join(format!("govfusion-store-{}", uuid::Uuid::new_v4().simple()));
        let settings = StoreSettings {
            data_dir: dir.display().to_string(),
            ..StoreSettings::default()
        };
        let repo = CaseRepository::open(&settings)
            .await
            .expect("Failed to open the repository on SQLite");
        Self {
            repo,
            settings,
            scratch: Scratch::Sqlite(dir),
        }
    }

    /// A repository on a fresh database of the `GOVFUSION_TEST_POSTGRES` server.
    pub async fn postgres() -> Self {
        let admin_url = crate::env::require(crate::env::POSTGRES_ENV);
        let database = format!("govfusion_test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPool::connect(&admin_url)
            .await
            .expect("Failed to connect to GOVFUSION_TEST_POSTGRES");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await
            .expect("Failed to create the test's database");
        admin.close().await;
        let settings = StoreSettings {
            url: with_database(&admin_url, &database),
            ..StoreSettings::default()
        };
        let repo = CaseRepository::open(&settings)
            .await
            .expect("Failed to open the repository on PostgreSQL");
        Self {
            repo,
            settings,
            scratch: Scratch::Postgres {
                admin_url,
                database,
            },
        }
    }

    /// Closes the repository and removes its database. A failed test leaves it behind, to be
    /// looked at.
    pub async fn finish(self) {
        self.repo.close().await;
        match self.scratch {
            Scratch::Sqlite(dir) => {
                std::fs::remove_dir_all(&dir).expect("Failed to remove the SQLite directory")
            }
            Scratch::Postgres {
                admin_url,
                database,
            } => {
                let admin = PgPool::connect(&admin_url)
                    .await
                    .expect("Failed to connect to GOVFUSION_TEST_POSTGRES");
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {database}")))
                    .execute(&admin)
                    .await
                    .expect("Failed to drop the test's database");
                admin.close().await;
            }
        }
    }
}

/// `url` with its database (the path) replaced by `database`, its query kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let authority_at = base.find("://").map_or(0, |at| at + 3);
    let host_end = base[authority_at..]
        .find('/')
        .map_or(base.len(), |at| authority_at + at);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{database}{query}", &base[..host_end])
}

/// Runs each test of the suite on SQLite, and on PostgreSQL when asked.
macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let store = super::test_store::TestStore::sqlite().await;
                    super::$test(&store).await;
                    store.finish().await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs GOVFUSION_TEST_POSTGRES (a postgres:// URL)"]
                async fn $test() {
                    let store = super::test_store::TestStore::postgres().await;
                    super::$test(&store).await;
                    store.finish().await;
                }
            )*
        }
    };
}
