//! Linking: the TTP's stage that joins the pseudonymised partner sources
//! into the two research models, on Apache DataFusion.
//!
//! Input: a folder of stage-2 Parquet files as `koppel pseudonymise`
//! writes them (`<source>_<period>.parquet`, every identifier a labelled
//! stage-2 pseudonym of one key). Output, in a new folder written
//! atomically:
//! - `person_model.parquet`: one row per survey respondent × year,
//!   enriched with payroll, job characteristics, absence, care use and next
//!   year's outcomes;
//! - `workforce_model.parquet`: one row per person × year on the payroll,
//!   with the person model's columns except `on_payroll` and the survey's:
//!   the population the disclosure engine measures a respondent's risk
//!   against;
//! - `organisation_model.parquet`: one row per organisation × year, from
//!   everyone on its payroll, with the number of persons each statistic
//!   rests on;
//! - `linkage-report.json`: how well the sources link ([`LinkageReport`]).
//!
//! The plans run under a memory limit and spill to disk beyond it; large
//! intermediates are written to Parquet in a work folder rather than held,
//! so memory stays flat as the sector grows. Definitions are in `sql.rs`
//! and docs/linking.md. The models still hold stage-2 pseudonyms: they are
//! TTP-internal and reach researchers only through koppel-export.

mod calendar;
mod codes;
mod dense;
mod error;
mod inputs;
mod report;
mod sql;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef};
use chrono::{Datelike, NaiveDate};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext, col};
use futures::StreamExt;
use koppel_contract::civil::day_number;
use koppel_contract::files::linked::{
    LINKAGE_REPORT_FILE, ORGANISATION_MODEL_FILE, PERSON_MODEL_FILE, WORKFORCE_MODEL_FILE,
};
use koppel_contract::fsx::{AtomicDir, AtomicDirError};
use koppel_contract::meta::{
    META_IDENTIFIER, META_KEY_ID, META_KEY_VERSION, META_PSEUDONYM_STAGE, PSEUDONYM_BYTES,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tracing::info;

use dense::DenseKeys;
pub use error::LinkError;
use inputs::LinkedSource;
pub use inputs::{LinkKey, Source, StagedSources};
pub use report::{CoverageCell, LinkageReport, OverlapCell, SourceLinkage};
pub use sql::{CARE_TYPES, LONG_TERM_DAYS, SURVEY_SCALES};

/// How the linking stage runs.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The extracts' reference date: open absence episodes run to it.
    /// `None`: 31 December of the latest payroll year.
    pub reference_date: Option<NaiveDate>,
    /// Memory DataFusion may use for joins, aggregations and sorts before
    /// it spills to disk.
    pub memory_limit: usize,
    /// Where spill files and intermediates go; `None`: a work folder
    /// beside the output, removed afterwards.
    pub work_dir: Option<PathBuf>,
    /// Parallelism; `None`: the number of cores.
    pub target_partitions: Option<usize>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            reference_date: None,
            memory_limit: 1536 << 20,
            work_dir: None,
            target_partitions: None,
        }
    }
}

/// What a linking run wrote.
#[derive(Debug, Clone)]
pub struct LinkOutcome {
    pub out_dir: PathBuf,
    pub person_model: PathBuf,
    pub workforce_model: PathBuf,
    pub organisation_model: PathBuf,
    pub report_path: PathBuf,
    pub report: LinkageReport,
}

/// Links the staged sources in `staged` into a new folder `out_dir` (which
/// must not exist or be empty). Nothing appears at `out_dir` unless the
/// whole run succeeded.
pub fn link(staged: &Path, out_dir: &Path, config: &LinkConfig) -> Result<LinkOutcome, LinkError> {
    let threads = config
        .target_partitions
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| LinkError::Io {
            path: out_dir.to_owned(),
            source: e,
        })?;
    runtime.block_on(link_async(staged, out_dir, config, threads))
}

async fn link_async(
    staged: &Path,
    out_dir: &Path,
    config: &LinkConfig,
    threads: usize,
) -> Result<LinkOutcome, LinkError> {
    let started = Instant::now();
    let sources = StagedSources::discover(staged)?;
    let target = AtomicDir::new(out_dir, ".koppel-link-").map_err(output_error)?;
    let work = match &config.work_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix(".koppel-link-work-")
            .tempdir_in(dir),
        None => tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(target.path()),
    }
    .map_err(|e| LinkError::Io {
        path: out_dir.to_owned(),
        source: e,
    })?;

    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(config.memory_limit, 1.0)
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(
            DiskManagerMode::Directories(vec![work.path().join("spill")]),
        ))
        .build_arc()?;
    std::fs::create_dir_all(work.path().join("spill")).map_err(|e| LinkError::Io {
        path: work.path().to_owned(),
        source: e,
    })?;
    let session = SessionConfig::new()
        .with_target_partitions(threads)
        .set_str("datafusion.execution.parquet.compression", "snappy")
        // Intermediates are written once and read once or twice; building
        // dictionaries for their mostly distinct values cost more than
        // they saved.
        .set_bool("datafusion.execution.parquet.dictionary_enabled", false)
        .set_str("datafusion.sql_parser.enable_ident_normalization", "true");
    let ctx = SessionContext::new_with_config_rt(session, runtime);

    for source in Source::ALL {
        let paths: Vec<String> = if source == Source::JobCharacteristics {
            vec![path_str(sources.latest(source))?]
        } else {
            sources
                .paths(source)
                .into_iter()
                .map(path_str)
                .collect::<Result<_, _>>()?
        };
        let frame = ctx
            .read_parquet(paths, ParquetReadOptions::default())
            .await?;
        ctx.register_table(staged_table(source), frame.into_view())?;
    }
    let keys = LinkKeys::number(&ctx).await?;
    info!(
        persons = keys.persons.len(),
        organisations = keys.organisations.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "link keys numbered"
    );
    keys.register(&ctx).await?;
    register_plan_functions(&ctx);

    let payroll_years = int_column(
        &ctx,
        "SELECT DISTINCT calendar_year(period) AS y FROM payroll ORDER BY y",
    )
    .await?;
    let survey_years = int_column(
        &ctx,
        "SELECT DISTINCT CAST(year AS INT) AS y FROM survey WHERE year IS NOT NULL ORDER BY y",
    )
    .await?;
    let Some(&last_year) = payroll_years.last() else {
        return Err(LinkError::EmptyBackbone);
    };
    let reference_date = config
        .reference_date
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(last_year, 12, 31).expect("valid date"));
    let mut model_years: Vec<i32> = payroll_years.iter().chain(&survey_years).copied().collect();
    model_years.sort_unstable();
    model_years.dedup();
    let years: Vec<(i32, i32, i32)> = model_years
        .iter()
        .map(|&y| (y, day_number(y, 1, 1), day_number(y + 1, 1, 1)))
        .collect();
    let reference_day = day_of(reference_date);

    execute(&ctx, &sql::years_table(&years)).await?;
    execute(&ctx, &sql::payroll_rows()).await?;
    materialise(&ctx, "pe", &sql::person_employer_year(), work.path()).await?;
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "payroll backbone built"
    );
    let first_day = day_number(payroll_years[0], 1, 1);
    materialise_sorted(
        &ctx,
        "py",
        &sql::person_year(first_day),
        &["person", "year"],
        work.path(),
    )
    .await?;
    materialise(&ctx, "episodes", &sql::episodes(reference_day), work.path()).await?;
    materialise(&ctx, "episode_years", sql::EPISODE_YEARS, work.path()).await?;
    materialise(&ctx, "person_absence", sql::PERSON_ABSENCE, work.path()).await?;
    materialise(
        &ctx,
        "employment_absence",
        sql::EMPLOYMENT_ABSENCE,
        work.path(),
    )
    .await?;
    materialise(&ctx, "insured_years", sql::INSURED_YEARS, work.path()).await?;
    materialise(&ctx, "care_years", &sql::care_years(), work.path()).await?;
    materialise(&ctx, "survey_years", &sql::survey_years(), work.path()).await?;
    execute(&ctx, sql::FWG_CODES).await?;
    execute(&ctx, sql::ANNUAL_REPORT_YEARS).await?;
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "intermediates built"
    );

    let key_metadata = |_: &str| -> HashMap<String, String> {
        [
            (META_PSEUDONYM_STAGE.to_owned(), "p2".to_owned()),
            (META_KEY_ID.to_owned(), sources.key.key_id.clone()),
            (META_KEY_VERSION.to_owned(), sources.key.key_version.clone()),
        ]
        .into()
    };
    // Both person-year models carry the same two pseudonym columns.
    let person_keys: [(&str, &str, &DenseKeys); 2] = [
        ("person_p2", "bsn", &keys.persons),
        ("org_p2", "kvk", &keys.organisations),
    ];
    let person_model = target.file(PERSON_MODEL_FILE);
    let (person_rows, person_schema) = write_model(
        &ctx,
        &sql::person_model(&payroll_years),
        &person_model,
        &person_keys,
        &key_metadata,
        "person",
        None,
    )
    .await?;
    info!(
        rows = person_rows,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "person model written"
    );
    let workforce_model = target.file(WORKFORCE_MODEL_FILE);
    let (workforce_rows, _) = write_model(
        &collecting_joins(&ctx),
        &sql::workforce_model(&payroll_years),
        &workforce_model,
        &person_keys,
        &key_metadata,
        "workforce",
        // Every column declared as in the person model: type, nullability
        // and key labels alike.
        Some(&person_schema),
    )
    .await?;
    info!(
        rows = workforce_rows,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "workforce model written"
    );
    let organisation_model = target.file(ORGANISATION_MODEL_FILE);
    let (organisation_rows, _) = write_model(
        &ctx,
        &sql::organisation_model(),
        &organisation_model,
        &[("org_p2", "kvk", &keys.organisations)],
        &key_metadata,
        "organisation",
        None,
    )
    .await?;
    info!(
        rows = organisation_rows,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "organisation model written"
    );

    materialise(&ctx, "presence", sql::PRESENCE, work.path()).await?;
    let report = report::build(
        &ctx,
        &sources,
        report::Frame {
            reference_date,
            payroll_years: payroll_years.clone(),
            model_years,
            person_model_rows: person_rows,
            workforce_model_rows: workforce_rows,
            organisation_model_rows: organisation_rows,
        },
    )
    .await?;
    let report_path = target.file(LINKAGE_REPORT_FILE);
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    std::fs::write(&report_path, json).map_err(|e| LinkError::Io {
        path: report_path.clone(),
        source: e,
    })?;
    drop(ctx);
    work.close().map_err(|e| LinkError::Io {
        path: out_dir.to_owned(),
        source: e,
    })?;
    target.commit().map_err(output_error)?;
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "linking done"
    );
    Ok(LinkOutcome {
        out_dir: out_dir.to_owned(),
        person_model: out_dir.join(PERSON_MODEL_FILE),
        workforce_model: out_dir.join(WORKFORCE_MODEL_FILE),
        organisation_model: out_dir.join(ORGANISATION_MODEL_FILE),
        report_path: out_dir.join(LINKAGE_REPORT_FILE),
        report,
    })
}

/// The SQL functions the plans in `sql.rs` use besides the dense keys:
/// the contract's codes and the calendar parts.
fn register_plan_functions(ctx: &SessionContext) {
    for part in calendar::CalendarPart::ALL {
        ctx.register_udf(part.udf());
    }
    for codes in codes::ContractCodes::ALL {
        ctx.register_udf(codes.udf());
    }
}

/// The table a source's stage-2 files are registered under; the SQL reads
/// the view of the source's own name, which has dense keys for the
/// pseudonyms (see [`LinkKeys`]).
fn staged_table(source: Source) -> String {
    format!("staged_{}", source.table())
}

/// The person and organisation pseudonyms of all sources, numbered densely
/// in pseudonym order (see `dense.rs` for why).
struct LinkKeys {
    persons: Arc<DenseKeys>,
    organisations: Arc<DenseKeys>,
}

impl LinkKeys {
    /// Per kind of key: the sources' pseudonym column, the SQL function
    /// that numbers it, and the name of the number in the linking SQL.
    const COLUMNS: [(&'static str, &'static str, &'static str); 2] = [
        ("bsn_p2", "person_key", "person"),
        ("employer_kvk_p2", "org_key", "org"),
    ];

    async fn number(ctx: &SessionContext) -> Result<LinkKeys, LinkError> {
        let queries = |column: &str| -> Vec<String> {
            Source::ALL
                .into_iter()
                .filter(|s| s.required_columns().contains(&column))
                .map(|s| format!("SELECT {column} FROM {}", staged_table(s)))
                .collect()
        };
        let [(persons, ..), (organisations, ..)] = Self::COLUMNS;
        let persons = DenseKeys::collect(ctx, "person", &queries(persons)).await?;
        let organisations =
            DenseKeys::collect(ctx, "organisation", &queries(organisations)).await?;
        if organisations.len() >= 1 << sql::ORG_RANK_BITS {
            return Err(LinkError::Plan(format!(
                "{} organisations; linking ranks at most {} per run",
                organisations.len(),
                1u64 << sql::ORG_RANK_BITS
            )));
        }
        Ok(LinkKeys {
            persons: Arc::new(persons),
            organisations: Arc::new(organisations),
        })
    }

    /// Registers the numbering functions and, per source, a view of its
    /// linking columns with the pseudonyms replaced by their numbers.
    async fn register(&self, ctx: &SessionContext) -> Result<(), LinkError> {
        let [(_, person_key, _), (_, org_key, _)] = Self::COLUMNS;
        ctx.register_udf(self.persons.udf(person_key));
        ctx.register_udf(self.organisations.udf(org_key));
        for source in Source::ALL {
            let columns: Vec<String> = source
                .required_columns()
                .iter()
                .map(|&c| match Self::COLUMNS.iter().find(|(p2, ..)| *p2 == c) {
                    Some((p2, function, name)) => format!("{function}({p2}) AS {name}"),
                    None => c.to_owned(),
                })
                .collect();
            execute(
                ctx,
                &format!(
                    "CREATE VIEW {} AS SELECT {} FROM {}",
                    source.table(),
                    columns.join(", "),
                    staged_table(source)
                ),
            )
            .await?;
        }
        Ok(())
    }
}

/// The day number (days since 1970-01-01) of a date.
fn day_of(date: NaiveDate) -> i32 {
    day_number(date.year(), date.month(), date.day())
}

/// The output folder appears whole or not at all.
fn output_error(e: AtomicDirError) -> LinkError {
    match e {
        AtomicDirError::Exists { path } => LinkError::OutputExists { path },
        AtomicDirError::Io { path, source } => LinkError::Io { path, source },
    }
}

fn path_str(path: &Path) -> Result<String, LinkError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| LinkError::NonUtf8Path {
            path: path.to_owned(),
        })
}

async fn execute(ctx: &SessionContext, sql: &str) -> Result<(), LinkError> {
    ctx.sql(sql).await?.collect().await?;
    Ok(())
}

/// Runs `sql` into Parquet files in the work folder and registers them as
/// table `name`: intermediates live on disk, not in memory.
async fn materialise(
    ctx: &SessionContext,
    name: &str,
    sql: &str,
    work: &Path,
) -> Result<(), LinkError> {
    let started = Instant::now();
    let dir = work.join(name);
    let dir = format!("{}/", path_str(&dir)?);
    ctx.sql(sql)
        .await?
        .write_parquet(&dir, DataFrameWriteOptions::new(), None)
        .await?;
    ctx.register_parquet(name, &dir, ParquetReadOptions::default())
        .await?;
    info!(
        step = name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "intermediate materialised"
    );
    Ok(())
}

/// Like [`materialise`], sorted by `order` (ascending) into one file that
/// is registered as sorted: a plan that reads it in order, through joins
/// that keep it (see [`collecting_joins`]), needs no sort of its own.
async fn materialise_sorted(
    ctx: &SessionContext,
    name: &str,
    sql: &str,
    order: &[&str],
    work: &Path,
) -> Result<(), LinkError> {
    let started = Instant::now();
    let file = path_str(&work.join(format!("{name}.parquet")))?;
    let order: Vec<_> = order.iter().map(|c| col(*c).sort(true, false)).collect();
    ctx.sql(sql)
        .await?
        .write_parquet(
            &file,
            DataFrameWriteOptions::new()
                .with_single_file_output(true)
                .with_sort_by(order.clone()),
            None,
        )
        .await?;
    ctx.register_parquet(
        name,
        &file,
        ParquetReadOptions::default().file_sort_order(vec![order]),
    )
    .await?;
    info!(
        step = name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "intermediate materialised"
    );
    Ok(())
}

/// The same session (tables, functions, memory pool), planning every hash
/// join with its build side collected whole and shared by all partitions
/// rather than both sides repartitioned by key. The workforce model joins
/// `py` (read in order: [`materialise_sorted`]) to smaller tables; so
/// planned, its joins keep `py`'s order and the model needs no sort of its
/// forty columns, where repartitioning would have scattered them. The
/// memory is the same: the build sides are hashed once either way.
fn collecting_joins(ctx: &SessionContext) -> SessionContext {
    let mut state = ctx.state();
    let optimizer = &mut state.config_mut().options_mut().optimizer;
    optimizer.hash_join_single_partition_threshold = usize::MAX;
    optimizer.hash_join_single_partition_threshold_rows = usize::MAX;
    SessionContext::new_with_state(state)
}

async fn int_column(ctx: &SessionContext, sql: &str) -> Result<Vec<i32>, LinkError> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut values = Vec::new();
    for batch in batches {
        let column = batch.column(0).as_primitive::<Int32Type>();
        values.extend(column.iter().flatten());
    }
    Ok(values)
}

/// Streams a model query into one Parquet file. The key columns get their
/// pseudonyms back and are labelled with their key, like every stage-2
/// column before them. With `like`, each column is declared as the column
/// of that name there (a column it lacks, or of another type, is an
/// error). Returns the rows written and the file's schema.
#[allow(clippy::too_many_arguments)]
async fn write_model(
    ctx: &SessionContext,
    sql: &str,
    path: &Path,
    pseudonyms: &[(&str, &str, &DenseKeys)],
    key_metadata: &dyn Fn(&str) -> HashMap<String, String>,
    model: &str,
    like: Option<&Schema>,
) -> Result<(u64, SchemaRef), LinkError> {
    let frame = ctx.sql(sql).await?;
    let arrow_schema: Schema = frame.schema().as_arrow().clone();
    // Each field, and the keys its numbers are restored from if it is a
    // key column.
    let (fields, restore): (Vec<Field>, Vec<Option<&DenseKeys>>) = arrow_schema
        .fields()
        .iter()
        .map(|f| {
            let field = f.as_ref().clone().with_metadata(HashMap::new());
            match pseudonyms.iter().find(|(name, _, _)| name == f.name()) {
                Some((name, kind, keys)) => {
                    let mut metadata = key_metadata(name);
                    metadata.insert(META_IDENTIFIER.to_owned(), (*kind).to_owned());
                    let field = field
                        .with_data_type(DataType::FixedSizeBinary(PSEUDONYM_BYTES as i32))
                        .with_metadata(metadata);
                    (field, Some(*keys))
                }
                None => (field, None),
            }
        })
        .unzip();
    let fields = match like {
        None => fields,
        Some(like) => fields
            .into_iter()
            .map(|field| match like.field_with_name(field.name()) {
                Ok(other) if other.data_type() == field.data_type() => Ok(other.clone()),
                Ok(other) => Err(LinkError::Plan(format!(
                    "{model} model: column {} is {} where the model it follows has {}",
                    field.name(),
                    field.data_type(),
                    other.data_type()
                ))),
                Err(_) => Err(LinkError::Plan(format!(
                    "{model} model: column {} is missing from the model it follows",
                    field.name()
                ))),
            })
            .collect::<Result<_, _>>()?,
    };
    let schema: SchemaRef = Arc::new(Schema::new_with_metadata(
        fields,
        [("koppel.model".to_owned(), model.to_owned())].into(),
    ));
    let file = std::fs::File::create(path).map_err(LinkError::io(path))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(256 * 1024))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))
        .map_err(LinkError::parquet(path))?;
    let mut stream = frame.execute_stream().await?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let columns = batch
            .columns()
            .iter()
            .zip(&restore)
            .map(|(column, keys)| match keys {
                Some(keys) => keys.restore(column),
                None => Ok(Arc::clone(column)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batch =
            RecordBatch::try_new(schema.clone(), columns).map_err(|source| LinkError::Arrow {
                context: format!("{}: assembling a batch", path.display()),
                source,
            })?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(LinkError::parquet(path))?;
    }
    writer.close().map_err(LinkError::parquet(path))?;
    Ok((rows, schema))
}

/// Reads a one-row query of BIGINT columns.
pub(crate) async fn one_row(ctx: &SessionContext, sql: &str) -> Result<Vec<u64>, LinkError> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| LinkError::Plan(format!("no result row for: {sql}")))?;
    Ok(batch
        .columns()
        .iter()
        .map(|c| {
            let c = c.as_primitive::<Int64Type>();
            if c.is_null(0) { 0 } else { c.value(0) as u64 }
        })
        .collect())
}
