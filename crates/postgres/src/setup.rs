//! `reviews db setup`: the source database, its tables and roles (the equivalent of the
//! original create_database script), and an optional bulk load of review rows.
//!
//! What the SOURCE enforces, and what it leaves to the pipeline's cleaning:
//! - enforced here: keys (primary keys, non-blank `review_id`/`product_id`, foreign keys from
//!   review to product and buyer) and column types (a rating is a `smallint`, a date a `date`,
//!   votes are `integer`s, the purchase flag a `boolean`);
//! - NOT enforced here: value ranges and plausibility (ratings outside 1..5, negative or
//!   inconsistent votes, dates in the future or before 1995, empty texts, odd identifiers).
//!   Like the legacy store this replaces, the source keeps such rows, and the pipeline's
//!   cleaning rejects them with a reason; a CHECK here would hide them from the rejects report.
//!
//! Loading text rows ([`RawReview`]) into typed columns therefore refuses, with a count per
//! reason, only what the source cannot hold: see [`LoadReport::rejected`].

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use reviews_domain::RawReview;
use reviews_domain::fields::{parse_date, parse_flag, parse_integer};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::config::{PgConfig, check_identifier, ident};
use crate::error::PgError;

/// What `setup` creates. Names are plain identifiers (see [`check_identifier`]).
#[derive(Clone)]
pub struct SetupConfig {
    /// The source database (default `amazonreviews`).
    pub database: String,
    /// The role that owns the database and its tables (NOLOGIN; default `reviews_owner`).
    pub owner_role: String,
    /// The extract's read-only login role (default `etl_reader`).
    pub reader_role: String,
    /// The reader's password (from Secrets Manager or a local config file; never logged).
    pub reader_password: String,
}

impl SetupConfig {
    pub fn new(reader_password: impl Into<String>) -> Self {
        Self {
            database: "amazonreviews".to_owned(),
            owner_role: "reviews_owner".to_owned(),
            reader_role: "etl_reader".to_owned(),
            reader_password: reader_password.into(),
        }
    }

    fn check(&self) -> Result<(), PgError> {
        check_identifier("database", &self.database)?;
        check_identifier("owner role", &self.owner_role)?;
        check_identifier("reader role", &self.reader_role)?;
        if self.owner_role == self.reader_role {
            return Err(PgError::Config(
                "the owner and reader roles must differ".into(),
            ));
        }
        if self.reader_password.is_empty() || self.reader_password.contains('\0') {
            return Err(PgError::Config(
                "the reader password is empty or contains NUL".into(),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for SetupConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupConfig")
            .field("database", &self.database)
            .field("owner_role", &self.owner_role)
            .field("reader_role", &self.reader_role)
            .finish_non_exhaustive()
    }
}

/// What a `setup` run changed. Empty `changes` means the database was already as required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupReport {
    pub database: String,
    pub changes: Vec<String>,
}

/// The tables, as created. Only types and keys are constrained (see the module docs).
const CREATE_TABLES: &[(&str, &str)] = &[
    (
        "product",
        "CREATE TABLE product (
            product_id text PRIMARY KEY CHECK (btrim(product_id) <> ''),
            title      text,
            category   text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )",
    ),
    (
        "buyer",
        "CREATE TABLE buyer (
            buyer_id   text PRIMARY KEY CHECK (btrim(buyer_id) <> ''),
            created_at timestamptz NOT NULL DEFAULT now()
        )",
    ),
    (
        "review",
        "CREATE TABLE review (
            review_id         text PRIMARY KEY CHECK (btrim(review_id) <> ''),
            product_id        text NOT NULL REFERENCES product (product_id),
            buyer_id          text REFERENCES buyer (buyer_id),
            rating            smallint,
            title             text,
            text              text,
            helpful_votes     integer,
            total_votes       integer,
            verified_purchase boolean,
            review_date       date,
            language          text,
            marketplace       text,
            created_at        timestamptz NOT NULL DEFAULT now(),
            updated_at        timestamptz NOT NULL DEFAULT now()
        )",
    ),
    // One row per review id deleted at the source (kept up by `track_review_deletion`), so
    // that an incremental extract can report deletions: a deleted row leaves no `updated_at`.
    (
        "review_deletion",
        "CREATE TABLE review_deletion (
            review_id  text PRIMARY KEY,
            deleted_at timestamptz NOT NULL,
            product_id text
        )",
    ),
];

/// Indexes: the extract's incremental reads (reviews by `(updated_at, review_id)`, deletions
/// by `(deleted_at, review_id)`), the foreign keys, and erasure lookups by buyer.
const CREATE_INDEXES: &[(&str, &str)] = &[
    (
        "review_updated_at_review_id_idx",
        "CREATE INDEX review_updated_at_review_id_idx ON review (updated_at, review_id)",
    ),
    (
        "review_product_id_idx",
        "CREATE INDEX review_product_id_idx ON review (product_id)",
    ),
    (
        "review_buyer_id_idx",
        "CREATE INDEX review_buyer_id_idx ON review (buyer_id)",
    ),
    (
        "review_deletion_deleted_at_review_id_idx",
        "CREATE INDEX review_deletion_deleted_at_review_id_idx
         ON review_deletion (deleted_at, review_id)",
    ),
];

/// The trigger functions, by name (in schema public).
const FUNCTIONS: &[(&str, &str)] = &[
    // Keeps `updated_at` current on every UPDATE that changes a row, whatever the writer does.
    (
        "touch_updated_at",
        "CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        NEW.updated_at := now();
        RETURN NEW;
    END
    $$",
    ),
    // Keeps `review_deletion` up: a deleted review id (or the old id of a review whose id
    // changed) is recorded with `now()`, the start of the deleting transaction (hence the
    // extract's safety lag), and the product it was under, so that the pipeline removes it
    // from that product's bucket only. A review moved to another product is recorded too
    // (it leaves its old product). Two pending removals of one id under different products
    // keep no product (the pipeline then looks in every bucket). A review inserted again
    // under that id removes its deletion row.
    // SECURITY DEFINER (as the owner, with a fixed search_path): any role allowed to write
    // review keeps the deletions in step without privileges on review_deletion.
    (
        "track_review_deletion",
        "CREATE OR REPLACE FUNCTION track_review_deletion() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (OLD.review_id <> NEW.review_id
                OR OLD.product_id IS DISTINCT FROM NEW.product_id)) THEN
            INSERT INTO public.review_deletion AS d (review_id, deleted_at, product_id)
            VALUES (OLD.review_id, now(), OLD.product_id)
            ON CONFLICT (review_id) DO UPDATE SET deleted_at = EXCLUDED.deleted_at,
                product_id = CASE WHEN d.product_id = EXCLUDED.product_id
                                  THEN d.product_id END;
        END IF;
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND OLD.review_id <> NEW.review_id) THEN
            DELETE FROM public.review_deletion WHERE review_id = NEW.review_id;
        END IF;
        RETURN NULL;
    END
    $$",
    ),
];

const TRIGGERS: &[(&str, &str)] = &[
    (
        "review_touch_updated_at",
        "CREATE TRIGGER review_touch_updated_at BEFORE UPDATE ON review FOR EACH ROW
         WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION touch_updated_at()",
    ),
    (
        "product_touch_updated_at",
        "CREATE TRIGGER product_touch_updated_at BEFORE UPDATE ON product FOR EACH ROW
         WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION touch_updated_at()",
    ),
    (
        "review_track_deletion",
        "CREATE TRIGGER review_track_deletion
         AFTER INSERT OR DELETE OR UPDATE OF review_id, product_id ON review FOR EACH ROW
         EXECUTE FUNCTION track_review_deletion()",
    ),
];

/// Sets a role's password from a bound parameter: utility statements take no parameters, so
/// the value is quoted by the server (`%L`), never spliced into SQL text by us. What is sent is
/// a SCRAM-SHA-256 verifier computed here, so the clear password never reaches the server's
/// logs or statistics.
const SET_PASSWORD_FUNCTION: &str =
    "CREATE FUNCTION pg_temp.reviews_set_password(role_name text, verifier text)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        EXECUTE format('ALTER ROLE %I PASSWORD %L', role_name, verifier);
    END
    $$";

/// Create (or check) the source database, its tables, indexes, triggers and roles. Connects as
/// an administrator (a superuser, or on RDS the master user) with `admin`; `admin`'s database
/// is only used to create the source database. Idempotent: a second run changes nothing and
/// returns an empty [`SetupReport::changes`]. Not meant to run concurrently with itself.
pub async fn setup(admin: &PgConfig, cfg: &SetupConfig) -> Result<SetupReport, PgError> {
    cfg.check()?;
    let mut changes = Vec::new();
    let client = admin.connect().await?;

    // Roles (cluster-wide).
    if !role_exists(&client, &cfg.owner_role).await? {
        let sql = format!("CREATE ROLE {} NOLOGIN", ident(&cfg.owner_role));
        client
            .batch_execute(&sql)
            .await
            .map_err(PgError::query("create owner role"))?;
        changes.push(format!("created role {}", cfg.owner_role));
    }
    if !role_exists(&client, &cfg.reader_role).await? {
        let sql = format!(
            "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
            ident(&cfg.reader_role)
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(PgError::query("create reader role"))?;
        changes.push(format!("created role {}", cfg.reader_role));
    } else {
        let row = client
            .query_one(
                "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
                 FROM pg_roles WHERE rolname = $1",
                &[&cfg.reader_role],
            )
            .await
            .map_err(PgError::query("read reader role"))?;
        let ok = row.get::<_, bool>(0)
            && !row.get::<_, bool>(1)
            && !row.get::<_, bool>(2)
            && !row.get::<_, bool>(3)
            && !row.get::<_, bool>(4)
            && !row.get::<_, bool>(5);
        if !ok {
            let sql = format!(
                "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
                ident(&cfg.reader_role)
            );
            client
                .batch_execute(&sql)
                .await
                .map_err(PgError::query("alter reader role"))?;
            changes.push(format!("reset attributes of role {}", cfg.reader_role));
        }
    }
    if !password_matches(&client, &cfg.reader_role, &cfg.reader_password).await? {
        client
            .batch_execute(SET_PASSWORD_FUNCTION)
            .await
            .map_err(PgError::query("create password helper"))?;
        let verifier = postgres_protocol::password::scram_sha_256(cfg.reader_password.as_bytes());
        client
            .execute(
                "SELECT pg_temp.reviews_set_password($1, $2)",
                &[&cfg.reader_role, &verifier],
            )
            .await
            .map_err(PgError::query("set reader password"))?;
        client
            .batch_execute("DROP FUNCTION pg_temp.reviews_set_password(text, text)")
            .await
            .map_err(PgError::query("drop password helper"))?;
        changes.push(format!("set the password of role {}", cfg.reader_role));
    }
    let read_only_default = client
        .query_opt(
            "SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
             WHERE r.rolname = $1 AND s.setdatabase = 0
               AND 'default_transaction_read_only=on' = ANY (s.setconfig)",
            &[&cfg.reader_role],
        )
        .await
        .map_err(PgError::query("read role settings"))?
        .is_some();
    if !read_only_default {
        let sql = format!(
            "ALTER ROLE {} SET default_transaction_read_only = on",
            ident(&cfg.reader_role)
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(PgError::query("make reader sessions read-only"))?;
        changes.push(format!(
            "sessions of {} are read-only by default",
            cfg.reader_role
        ));
    }

    // The database.
    let owner = client
        .query_opt(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1",
            &[&cfg.database],
        )
        .await
        .map_err(PgError::query("look up database"))?
        .map(|r| r.get::<_, String>(0));
    match owner {
        None => {
            let sql = format!(
                "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0",
                ident(&cfg.database),
                ident(&cfg.owner_role)
            );
            match client.batch_execute(&sql).await {
                Ok(()) => changes.push(format!("created database {}", cfg.database)),
                // Created by someone else in between: fine.
                Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => {}
                Err(e) => return Err(PgError::query("create database")(e)),
            }
        }
        Some(o) if o != cfg.owner_role => {
            let sql = format!(
                "ALTER DATABASE {} OWNER TO {}",
                ident(&cfg.database),
                ident(&cfg.owner_role)
            );
            client
                .batch_execute(&sql)
                .await
                .map_err(PgError::query("change database owner"))?;
            changes.push(format!(
                "database {} owned by {}",
                cfg.database, cfg.owner_role
            ));
        }
        Some(_) => {}
    }
    // Only the reader may connect (besides owner and superusers): no CONNECT/TEMP for PUBLIC.
    let acl_ok = client
        .query_one(
            "SELECT NOT has_database_privilege('public', d.oid, 'CONNECT')
                AND NOT has_database_privilege('public', d.oid, 'TEMPORARY')
                AND has_database_privilege($2, d.oid, 'CONNECT')
             FROM pg_database d WHERE d.datname = $1",
            &[&cfg.database, &cfg.reader_role],
        )
        .await
        .map_err(PgError::query("read database privileges"))?
        .get::<_, bool>(0);
    if !acl_ok {
        let sql = format!(
            "REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {reader}",
            db = ident(&cfg.database),
            reader = ident(&cfg.reader_role)
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(PgError::query("grant database privileges"))?;
        changes.push(format!(
            "only {} (and the owner) may connect to {}",
            cfg.reader_role, cfg.database
        ));
    }
    drop(client);

    // Inside the database: tables, indexes, triggers, grants; objects owned by the owner role.
    // A database set up before `review_deletion` existed gets it (and its trigger) here.
    let db = admin.with_database(&cfg.database).connect().await?;
    db.batch_execute(&format!(
        "SET search_path = public; SET ROLE {}",
        ident(&cfg.owner_role)
    ))
    .await
    .map_err(PgError::query("assume owner role"))?;
    for (table, ddl) in CREATE_TABLES {
        if !relation_exists(&db, table).await? {
            db.batch_execute(ddl)
                .await
                .map_err(PgError::query("create table"))?;
            changes.push(format!("created table {table}"));
        }
    }
    for (index, ddl) in CREATE_INDEXES {
        if !relation_exists(&db, index).await? {
            db.batch_execute(ddl)
                .await
                .map_err(PgError::query("create index"))?;
            changes.push(format!("created index {index}"));
        }
    }
    // A source set up before review_deletion recorded products: add the column.
    let has_product = db
        .query_opt(
            "SELECT 1 FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = 'review_deletion'
               AND column_name = 'product_id'",
            &[],
        )
        .await
        .map_err(PgError::query("look up column"))?
        .is_some();
    if !has_product {
        db.batch_execute("ALTER TABLE review_deletion ADD COLUMN product_id text")
            .await
            .map_err(PgError::query("add column"))?;
        changes.push("added column review_deletion.product_id".to_owned());
    }
    // Functions are created, or replaced when their body differs from this version's.
    for (function, ddl) in FUNCTIONS {
        let body = ddl.split("$$").nth(1).expect("a function body between $$");
        let current: Option<String> = db
            .query_opt(
                "SELECT prosrc FROM pg_proc WHERE proname = $1
                   AND pronamespace = 'public'::regnamespace",
                &[function],
            )
            .await
            .map_err(PgError::query("look up function"))?
            .map(|row| row.get(0));
        if current.as_deref() != Some(body) {
            db.batch_execute(ddl)
                .await
                .map_err(PgError::query("create trigger function"))?;
            let verb = if current.is_some() {
                "updated"
            } else {
                "created"
            };
            changes.push(format!("{verb} function {function}"));
        }
    }
    // Triggers are created, or dropped and created again when their events differ.
    for (trigger, ddl) in TRIGGERS {
        let current: Option<String> = db
            .query_opt(
                "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = $1 AND NOT tgisinternal",
                &[trigger],
            )
            .await
            .map_err(PgError::query("look up trigger"))?
            .map(|row| row.get(0));
        let events = trigger_events(ddl);
        match current {
            Some(def) if trigger_events(&def) == events => {}
            current => {
                if current.is_some() {
                    let table = trigger_table(ddl);
                    db.batch_execute(&format!("DROP TRIGGER {trigger} ON {table}"))
                        .await
                        .map_err(PgError::query("drop trigger"))?;
                }
                db.batch_execute(ddl)
                    .await
                    .map_err(PgError::query("create trigger"))?;
                let verb = if current.is_some() {
                    "updated"
                } else {
                    "created"
                };
                changes.push(format!("{verb} trigger {trigger}"));
            }
        }
    }
    db.batch_execute("RESET ROLE")
        .await
        .map_err(PgError::query("reset role"))?;
    // The reader: USAGE on the schema and SELECT on the four tables, nothing else.
    let grants_ok = db
        .query_one(
            "SELECT has_schema_privilege($1, 'public', 'USAGE')
                AND bool_and(has_table_privilege($1, 'public.' || t, 'SELECT'))
                AND NOT bool_or(has_table_privilege($1, 'public.' || t,
                        'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))
             FROM unnest(ARRAY['product', 'buyer', 'review', 'review_deletion']) AS t",
            &[&cfg.reader_role],
        )
        .await
        .map_err(PgError::query("read table privileges"))?
        .get::<_, bool>(0);
    if !grants_ok {
        let sql = format!(
            "GRANT USAGE ON SCHEMA public TO {r};
             REVOKE ALL ON product, buyer, review, review_deletion FROM {r};
             GRANT SELECT ON product, buyer, review, review_deletion TO {r}",
            r = ident(&cfg.reader_role)
        );
        db.batch_execute(&sql)
            .await
            .map_err(PgError::query("grant table privileges"))?;
        changes.push(format!(
            "{} may SELECT product, buyer, review, review_deletion (and nothing else)",
            cfg.reader_role
        ));
    }
    for c in &changes {
        tracing::info!(database = %cfg.database, change = %c, "db setup");
    }
    Ok(SetupReport {
        database: cfg.database.clone(),
        changes,
    })
}

/// The events of a trigger definition (`AFTER INSERT OR ... ON`), whitespace-normalised, to
/// compare ours with what `pg_get_triggerdef` reports.
fn trigger_events(def: &str) -> String {
    let words: Vec<&str> = def.split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| matches!(*w, "BEFORE" | "AFTER"))
        .unwrap_or(0);
    let end = words.iter().position(|w| *w == "ON").unwrap_or(words.len());
    words[start..end.max(start)].join(" ")
}

/// The table of one of our trigger definitions (`... ON <table> FOR EACH ROW ...`).
fn trigger_table(def: &str) -> &str {
    let mut words = def.split_whitespace();
    words.find(|w| *w == "ON");
    words.next().unwrap_or("review")
}

async fn role_exists(client: &Client, role: &str) -> Result<bool, PgError> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .map_err(PgError::query("look up role"))?
        .is_some())
}

async fn relation_exists(client: &Client, name: &str) -> Result<bool, PgError> {
    Ok(client
        .query_one("SELECT to_regclass('public.' || $1) IS NOT NULL", &[&name])
        .await
        .map_err(PgError::query("look up relation"))?
        .get(0))
}

/// Whether the role's stored SCRAM verifier already matches `password` (so setup need not
/// change it). Reading `pg_authid` needs a superuser; elsewhere (RDS) the password is set
/// on every run, which changes only the salt.
async fn password_matches(client: &Client, role: &str, password: &str) -> Result<bool, PgError> {
    let stored = match client
        .query_opt(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
    {
        Ok(row) => row.and_then(|r| r.get::<_, Option<String>>(0)),
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => return Ok(false),
        Err(e) => return Err(PgError::query("read role password")(e)),
    };
    Ok(stored.is_some_and(|v| crate::scram::verifier_matches(&v, password)))
}

// ---------------------------------------------------------------------------------------------
// load

/// Counts of a load. `read = inserted + updated + unchanged + rejected total`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    /// Already in the source, identical (a second load of the same file changes nothing).
    pub unchanged: u64,
    /// Rows the source cannot hold, by reason: `malformed_row` (the reader already flagged
    /// it), `missing_review_id`, `missing_product_id`, `rating_not_an_integer`,
    /// `votes_not_an_integer`, `date_not_a_date`, `nul_character` (PostgreSQL text cannot hold
    /// U+0000), `duplicate_review_id` (a later row of the same load with a key already loaded:
    /// the first one wins, so loading the same file twice is a no-op).
    pub rejected: BTreeMap<String, u64>,
}

impl LoadReport {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Options of [`load_reviews`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Rows per INSERT statement (each statement sends whole columns as array parameters).
    pub batch_rows: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { batch_rows: 5_000 }
    }
}

/// One row as the source stores it.
#[derive(Debug, Default)]
struct Columns {
    review_id: Vec<String>,
    product_id: Vec<String>,
    buyer_id: Vec<Option<String>>,
    rating: Vec<Option<i16>>,
    title: Vec<Option<String>>,
    text: Vec<Option<String>>,
    helpful_votes: Vec<Option<i32>>,
    total_votes: Vec<Option<i32>>,
    verified_purchase: Vec<Option<bool>>,
    review_date: Vec<Option<NaiveDate>>,
    language: Vec<Option<String>>,
    marketplace: Vec<Option<String>>,
    // New products of this batch (first occurrence in the load wins).
    new_product_id: Vec<String>,
    new_product_title: Vec<Option<String>>,
    new_product_category: Vec<Option<String>>,
}

impl Columns {
    fn len(&self) -> usize {
        self.review_id.len()
    }
}

const INSERT_PRODUCTS: &str = "INSERT INTO product (product_id, title, category)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
    ON CONFLICT (product_id) DO UPDATE SET title = EXCLUDED.title, category = EXCLUDED.category
    WHERE (product.title, product.category) IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.category)";

const INSERT_BUYERS: &str = "INSERT INTO buyer (buyer_id)
    SELECT DISTINCT b FROM unnest($1::text[]) AS b WHERE b IS NOT NULL
    ON CONFLICT (buyer_id) DO NOTHING";

const INSERT_REVIEWS: &str = "INSERT INTO review (review_id, product_id, buyer_id, rating, title,
        text, helpful_votes, total_votes, verified_purchase, review_date, language, marketplace)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::text[], $6::text[],
        $7::int4[], $8::int4[], $9::bool[], $10::date[], $11::text[], $12::text[])
    ON CONFLICT (review_id) DO UPDATE SET product_id = EXCLUDED.product_id,
        buyer_id = EXCLUDED.buyer_id, rating = EXCLUDED.rating, title = EXCLUDED.title,
        text = EXCLUDED.text, helpful_votes = EXCLUDED.helpful_votes,
        total_votes = EXCLUDED.total_votes, verified_purchase = EXCLUDED.verified_purchase,
        review_date = EXCLUDED.review_date, language = EXCLUDED.language,
        marketplace = EXCLUDED.marketplace
    WHERE (review.product_id, review.buyer_id, review.rating, review.title, review.text,
           review.helpful_votes, review.total_votes, review.verified_purchase,
           review.review_date, review.language, review.marketplace)
        IS DISTINCT FROM
          (EXCLUDED.product_id, EXCLUDED.buyer_id, EXCLUDED.rating, EXCLUDED.title,
           EXCLUDED.text, EXCLUDED.helpful_votes, EXCLUDED.total_votes,
           EXCLUDED.verified_purchase, EXCLUDED.review_date, EXCLUDED.language,
           EXCLUDED.marketplace)
    RETURNING (xmax = 0) AS inserted";

/// Load review rows into the source tables of the database `target` points at (connect as
/// the owner or an administrator), in batches of array-parameter INSERTs, one transaction
/// per batch. Products and buyers are created as the rows name them. A row already present
/// is updated only when a value differs (the trigger then moves its `updated_at`), so loading
/// the same rows twice changes nothing. Memory: one batch, plus the ids seen so far (to keep
/// the first occurrence of a key).
pub async fn load_reviews<I>(
    target: &PgConfig,
    rows: I,
    opts: &LoadOptions,
) -> Result<LoadReport, PgError>
where
    I: IntoIterator<Item = RawReview>,
{
    let mut client = target.connect().await?;
    client
        .batch_execute("SET search_path = public")
        .await
        .map_err(PgError::query("set search path"))?;
    let mut report = LoadReport::default();
    let mut seen_reviews: HashSet<String> = HashSet::new();
    let mut seen_products: HashSet<String> = HashSet::new();
    let mut cols = Columns::default();
    let batch_rows = opts.batch_rows.max(1);
    for raw in rows {
        report.read += 1;
        match source_row(&raw) {
            Err(reason) => *report.rejected.entry(reason.to_owned()).or_default() += 1,
            Ok(row) => {
                if !seen_reviews.insert(row.review_id.clone()) {
                    *report
                        .rejected
                        .entry("duplicate_review_id".to_owned())
                        .or_default() += 1;
                    continue;
                }
                if seen_products.insert(row.product_id.clone()) {
                    cols.new_product_id.push(row.product_id.clone());
                    cols.new_product_title.push(non_blank(&raw.product_title));
                    cols.new_product_category
                        .push(non_blank(&raw.product_category));
                }
                row.push_to(&mut cols);
                if cols.len() >= batch_rows {
                    flush(&mut client, &mut cols, &mut report).await?;
                }
            }
        }
    }
    if cols.len() > 0 || !cols.new_product_id.is_empty() {
        flush(&mut client, &mut cols, &mut report).await?;
    }
    tracing::info!(
        read = report.read,
        inserted = report.inserted,
        updated = report.updated,
        unchanged = report.unchanged,
        rejected = report.rejected_total(),
        "db load done"
    );
    Ok(report)
}

async fn flush(
    client: &mut Client,
    cols: &mut Columns,
    report: &mut LoadReport,
) -> Result<(), PgError> {
    let c = std::mem::take(cols);
    let tx = client
        .transaction()
        .await
        .map_err(PgError::query("begin load"))?;
    tx.execute(
        INSERT_PRODUCTS,
        &[
            &c.new_product_id,
            &c.new_product_title,
            &c.new_product_category,
        ],
    )
    .await
    .map_err(PgError::query("load products"))?;
    tx.execute(INSERT_BUYERS, &[&c.buyer_id])
        .await
        .map_err(PgError::query("load buyers"))?;
    let rows = tx
        .query(
            INSERT_REVIEWS,
            &[
                &c.review_id,
                &c.product_id,
                &c.buyer_id,
                &c.rating,
                &c.title,
                &c.text,
                &c.helpful_votes,
                &c.total_votes,
                &c.verified_purchase,
                &c.review_date,
                &c.language,
                &c.marketplace,
            ],
        )
        .await
        .map_err(PgError::query("load reviews"))?;
    tx.commit().await.map_err(PgError::query("commit load"))?;
    let inserted = rows.iter().filter(|r| r.get::<_, bool>(0)).count() as u64;
    let changed = rows.len() as u64;
    report.inserted += inserted;
    report.updated += changed - inserted;
    report.unchanged += c.len() as u64 - changed;
    Ok(())
}

struct SourceRow {
    review_id: String,
    product_id: String,
    buyer_id: Option<String>,
    rating: Option<i16>,
    title: Option<String>,
    text: Option<String>,
    helpful_votes: Option<i32>,
    total_votes: Option<i32>,
    verified_purchase: Option<bool>,
    review_date: Option<NaiveDate>,
    language: Option<String>,
    marketplace: Option<String>,
}

impl SourceRow {
    fn push_to(self, c: &mut Columns) {
        c.review_id.push(self.review_id);
        c.product_id.push(self.product_id);
        c.buyer_id.push(self.buyer_id);
        c.rating.push(self.rating);
        c.title.push(self.title);
        c.text.push(self.text);
        c.helpful_votes.push(self.helpful_votes);
        c.total_votes.push(self.total_votes);
        c.verified_purchase.push(self.verified_purchase);
        c.review_date.push(self.review_date);
        c.language.push(self.language);
        c.marketplace.push(self.marketplace);
    }
}

fn non_blank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A text row as the typed source holds it, or the reason it cannot hold it.
fn source_row(raw: &RawReview) -> Result<SourceRow, &'static str> {
    if raw.read_defect.is_some() {
        return Err("malformed_row");
    }
    let fields = [
        &raw.review_id,
        &raw.product_id,
        &raw.product_title,
        &raw.product_category,
        &raw.buyer_id,
        &raw.title,
        &raw.text,
        &raw.language,
        &raw.marketplace,
    ];
    if fields
        .iter()
        .any(|f| f.as_deref().is_some_and(|s| s.contains('\0')))
    {
        return Err("nul_character");
    }
    let review_id = non_blank(&raw.review_id).ok_or("missing_review_id")?;
    let product_id = non_blank(&raw.product_id).ok_or("missing_product_id")?;
    let rating = match non_blank(&raw.rating) {
        None => None,
        Some(s) => Some(parse_integer::<i16>(&s).ok_or("rating_not_an_integer")?),
    };
    let votes = |v: &Option<String>| match non_blank(v) {
        None => Ok(None),
        Some(s) => parse_integer::<i32>(&s)
            .map(Some)
            .ok_or("votes_not_an_integer"),
    };
    let helpful_votes = votes(&raw.helpful_votes)?;
    let total_votes = votes(&raw.total_votes)?;
    let review_date = match non_blank(&raw.review_date) {
        None => None,
        Some(s) => Some(parse_date(&s).ok_or("date_not_a_date")?),
    };
    // Anything else is unknown to cleaning as well: store NULL.
    let verified_purchase = non_blank(&raw.verified_purchase).and_then(|s| parse_flag(&s));
    Ok(SourceRow {
        review_id,
        product_id,
        buyer_id: non_blank(&raw.buyer_id),
        rating,
        title: raw.title.clone(),
        text: raw.text.clone(),
        helpful_votes,
        total_votes,
        verified_purchase,
        review_date,
        language: non_blank(&raw.language),
        marketplace: non_blank(&raw.marketplace),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawReview {
        RawReview {
            review_id: Some("R1".into()),
            product_id: Some("P1".into()),
            rating: Some("5".into()),
            review_date: Some("2015-01-02".into()),
            ..Default::default()
        }
    }

    #[test]
    fn source_keeps_dirt_it_can_hold_and_refuses_what_it_cannot() {
        // Out-of-range values and empty texts fit the types: kept for cleaning to reject.
        for rating in ["0", "6", "-1", "4.0"] {
            let r = RawReview {
                rating: Some(rating.into()),
                ..raw()
            };
            assert!(source_row(&r).is_ok(), "{rating}");
        }
        let future = RawReview {
            review_date: Some("2099-01-01".into()),
            text: Some("   ".into()),
            ..raw()
        };
        assert!(source_row(&future).is_ok());
        let cases = [
            (
                RawReview {
                    rating: Some("five".into()),
                    ..raw()
                },
                "rating_not_an_integer",
            ),
            (
                RawReview {
                    review_date: Some("2015-02-30".into()),
                    ..raw()
                },
                "date_not_a_date",
            ),
            (
                RawReview {
                    product_id: Some(" ".into()),
                    ..raw()
                },
                "missing_product_id",
            ),
            (
                RawReview {
                    review_id: None,
                    ..raw()
                },
                "missing_review_id",
            ),
            (
                RawReview {
                    helpful_votes: Some("lots".into()),
                    ..raw()
                },
                "votes_not_an_integer",
            ),
            (
                RawReview {
                    text: Some("a\0b".into()),
                    ..raw()
                },
                "nul_character",
            ),
            (
                RawReview {
                    read_defect: Some("malformed_row: 3 of 15".into()),
                    ..raw()
                },
                "malformed_row",
            ),
        ];
        for (r, reason) in cases {
            assert_eq!(source_row(&r).err(), Some(reason));
        }
        assert_eq!(parse_integer::<i16>("70000"), None);
        assert_eq!(parse_integer::<i16>("3"), Some(3));
    }

    /// The loader and cleaning read a field the same way: what `db setup --load` stores, the
    /// extract hands back as text and cleaning reads to the same value (`run --input` on the
    /// same file gives the same reviews).
    #[test]
    fn the_loader_and_cleaning_read_fields_alike() {
        use reviews_domain::{CleanOutcome, Cleaner};
        let clean = |r: &RawReview| {
            let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
                .unwrap()
                .to_utc();
            match Cleaner::new("t", now).clean(r) {
                CleanOutcome::Clean(c) => Some(*c),
                CleanOutcome::Rejected(_) => None,
            }
        };
        let base = RawReview {
            buyer_id: Some("C1".into()),
            text: Some("A sturdy kettle that boils fast and stays cool.".into()),
            ..raw()
        };
        for flag in [
            "Y", "yes", "t", "TRUE", "1", "n", "f", "False", "0", "maybe", "",
        ] {
            let r = RawReview {
                verified_purchase: Some(flag.into()),
                ..base.clone()
            };
            let stored = source_row(&r).unwrap().verified_purchase;
            let cleaned = clean(&r).unwrap().verified_purchase;
            assert_eq!(stored, cleaned, "verified_purchase {flag:?}");
        }
        for votes in ["3", "3.0", " 7 ", "1e2"] {
            let r = RawReview {
                helpful_votes: Some(votes.into()),
                ..base.clone()
            };
            let stored = source_row(&r).unwrap().helpful_votes.map(|v| v as u32);
            let cleaned = clean(&r).map(|c| c.helpful_votes);
            assert_eq!(stored, cleaned, "helpful_votes {votes:?}");
        }
        for rating in ["4", "4.0", " 2 "] {
            let r = RawReview {
                rating: Some(rating.into()),
                ..base.clone()
            };
            let stored = source_row(&r).unwrap().rating.map(|v| v as u8);
            let cleaned = clean(&r).map(|c| c.rating);
            assert_eq!(stored, cleaned, "rating {rating:?}");
        }
        // Refused by both (the loader cannot store it; cleaning rejects it).
        for votes in ["2.5", "lots"] {
            let r = RawReview {
                helpful_votes: Some(votes.into()),
                ..base.clone()
            };
            assert!(source_row(&r).is_err() && clean(&r).is_none(), "{votes:?}");
        }
    }
}
