//! The linking output as the export reads it: the three models (and the
//! workforce, when linking wrote one), checked to come from one stage-2
//! key, with each input file's checksum for the release id and manifest.
//!
//! Files are read in parallel, row group by row group, and the workforce
//! — the largest file by far, read only as the k-map's population — only
//! in the columns the person rules name.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use koppel_contract::files::linked::{
    LINKAGE_REPORT_FILE, ORGANISATION_MODEL_FILE, PERSON_MODEL_FILE, WORKFORCE_MODEL_FILE,
};
use koppel_contract::meta::{META_KEY_ID, META_KEY_VERSION};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;

use crate::config::{DisclosureConfig, TableModel};
use crate::release::sha256_file;
use crate::{ExportError, InputFile, KeyLabel, LeakGuard, tabulate};

/// The linking output, read and checked.
pub struct LinkedModels {
    pub people: RecordBatch,
    pub orgs: RecordBatch,
    /// The k-map's population; `None` for older linking output, whose
    /// recipients are then all counted in the released rows.
    pub workforce: Option<RecordBatch>,
    pub report_path: PathBuf,
    /// The stage-2 key every model was made with.
    pub stage2: KeyLabel,
    /// Each input file's name and checksum.
    pub files: Vec<InputFile>,
}

impl LinkedModels {
    /// Reads `linked`, checks the models against each other and the
    /// table specs, and adds their stage-2 pseudonyms to `guard`.
    pub fn read(
        linked: &Path,
        config: &DisclosureConfig,
        guard: &mut LeakGuard,
    ) -> Result<LinkedModels, ExportError> {
        let person_path = linked.join(PERSON_MODEL_FILE);
        let org_path = linked.join(ORGANISATION_MODEL_FILE);
        let report_path = linked.join(LINKAGE_REPORT_FILE);
        for p in [&person_path, &org_path, &report_path] {
            if !p.is_file() {
                return Err(ExportError::Input {
                    path: p.clone(),
                    message: "missing: export reads the output of `koppel link`".into(),
                });
            }
        }
        let workforce_path = linked.join(WORKFORCE_MODEL_FILE);
        let has_workforce = workforce_path.is_file();
        let mut paths = vec![&person_path, &org_path, &report_path];
        if has_workforce {
            paths.push(&workforce_path);
        }
        let population_columns = crate::person::population_columns(&config.person);
        let (files, (people, (orgs, workforce))) = rayon::join(
            || checksums(&paths),
            || {
                rayon::join(
                    || read_model(&person_path, None),
                    || {
                        rayon::join(
                            || read_model(&org_path, None),
                            || {
                                has_workforce
                                    .then(|| read_model(&workforce_path, Some(&population_columns)))
                                    .transpose()
                            },
                        )
                    },
                )
            },
        );
        let (files, people, orgs, workforce) = (files?, people?, orgs?, workforce?);

        let stage2 = stage2_key(&people, &person_path)?;
        for (batch, path) in [
            (Some(&orgs), &org_path),
            (workforce.as_ref(), &workforce_path),
        ] {
            if let Some(batch) = batch
                && stage2_key(batch, path)? != stage2
            {
                return Err(ExportError::Input {
                    path: path.clone(),
                    message: "made with another stage-2 key than the person model".into(),
                });
            }
        }
        for spec in &config.tables {
            let model = match spec.model {
                TableModel::Person => &people,
                TableModel::Organisation => &orgs,
            };
            tabulate::check_columns(spec, model)?;
        }
        for (batch, columns) in [
            (&people, &["person_p2", "org_p2"][..]),
            (&orgs, &["org_p2"][..]),
        ]
        .into_iter()
        .chain(workforce.iter().map(|w| (w, &["person_p2", "org_p2"][..])))
        {
            for c in columns {
                if let Some(a) = batch.column_by_name(c) {
                    guard.insert_column(a.as_ref());
                }
            }
        }
        Ok(LinkedModels {
            people,
            orgs,
            workforce,
            report_path,
            stage2,
            files,
        })
    }
}

fn checksums(paths: &[&PathBuf]) -> Result<Vec<InputFile>, ExportError> {
    paths
        .par_iter()
        .map(|p| {
            let (sha256, _) = sha256_file(p)?;
            Ok(InputFile {
                name: p
                    .file_name()
                    .expect("joined file name")
                    .to_string_lossy()
                    .into_owned(),
                sha256,
            })
        })
        .collect()
}

/// A model as one batch: its row groups read in parallel, in order; only
/// the named columns (those it has) when `columns` is given.
fn read_model(path: &Path, columns: Option<&BTreeSet<String>>) -> Result<RecordBatch, ExportError> {
    let context = || format!("reading {}", path.display());
    let open = || File::open(path).map_err(ExportError::io(path));
    let builder = ParquetRecordBatchReaderBuilder::try_new(open()?)
        .map_err(ExportError::parquet(context()))?;
    let mask = match columns {
        None => ProjectionMask::all(),
        Some(names) => {
            ProjectionMask::columns(builder.parquet_schema(), names.iter().map(String::as_str))
        }
    };
    let metadata = builder.metadata().clone();
    let groups = metadata.num_row_groups();
    // A run of row groups per thread: each reader decodes its own pages.
    let threads = rayon::current_num_threads().max(1);
    let per = groups.div_ceil(threads).max(1);
    let runs: Vec<Vec<usize>> = (0..groups)
        .collect::<Vec<_>>()
        .chunks(per)
        .map(<[usize]>::to_vec)
        .collect();
    let parts: Vec<Vec<RecordBatch>> = runs
        .into_par_iter()
        .map(|run| {
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
                open()?,
                parquet::arrow::arrow_reader::ArrowReaderMetadata::try_new(
                    metadata.clone(),
                    Default::default(),
                )
                .map_err(ExportError::parquet(context()))?,
            );
            builder
                .with_projection(mask.clone())
                .with_row_groups(run)
                .with_batch_size(65_536)
                .build()
                .map_err(ExportError::parquet(context()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(ExportError::arrow(context()))
        })
        .collect::<Result<_, _>>()?;
    let schema = match parts.iter().flatten().next() {
        Some(b) => b.schema(),
        None => {
            // No rows: the projected schema from a reader over nothing.
            let reader = ParquetRecordBatchReaderBuilder::try_new(open()?)
                .map_err(ExportError::parquet(context()))?
                .with_projection(mask)
                .build()
                .map_err(ExportError::parquet(context()))?;
            arrow::array::RecordBatchReader::schema(&reader)
        }
    };
    arrow::compute::concat_batches(&schema, parts.iter().flatten())
        .map_err(ExportError::arrow(context()))
}

fn stage2_key(batch: &RecordBatch, path: &Path) -> Result<KeyLabel, ExportError> {
    let schema = batch.schema();
    let field = schema.fields().first().ok_or_else(|| ExportError::Input {
        path: path.to_owned(),
        message: "has no columns".into(),
    })?;
    let meta = field.metadata();
    match (meta.get(META_KEY_ID), meta.get(META_KEY_VERSION)) {
        (Some(id), Some(version)) => Ok(KeyLabel {
            purpose: "stage2".into(),
            id: id.clone(),
            version: version.clone(),
        }),
        _ => Err(ExportError::Input {
            path: path.to_owned(),
            message: format!(
                "column {} carries no stage-2 key label; is this a linking output?",
                field.name()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    #[test]
    fn a_model_of_many_row_groups_reads_back_in_order_and_projected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.parquet");
        let n = 10_000;
        let label: std::collections::HashMap<String, String> =
            [(META_KEY_ID.to_owned(), "stage2-test".to_owned())].into();
        let schema = Arc::new(Schema::new(vec![
            Field::new("year", DataType::Int32, false).with_metadata(label.clone()),
            Field::new("sector", DataType::Utf8, true),
            Field::new("unused", DataType::Int32, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| (i % 7 != 0).then(|| format!("s{}", i % 13))),
                )),
                Arc::new(Int32Array::from_iter_values((0..n).map(|i| -i))),
            ],
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(999))
            .build();
        let mut w =
            ArrowWriter::try_new(File::create(&path).unwrap(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let groups = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .metadata()
            .num_row_groups();
        assert!(groups > 2, "{groups} row groups");
        let all = read_model(&path, None).unwrap();
        assert_eq!(all, batch);
        let wanted: BTreeSet<String> = ["sector", "year", "absent"].map(String::from).into();
        let some = read_model(&path, Some(&wanted)).unwrap();
        assert_eq!(some, batch.project(&[0, 1]).unwrap());
        // The stage-2 key label rides on the first field's metadata.
        assert_eq!(some.schema().field(0).metadata(), &label);

        // A model without rows reads as an empty batch of its columns.
        let empty = dir.path().join("empty.parquet");
        let w = ArrowWriter::try_new(File::create(&empty).unwrap(), batch.schema(), None).unwrap();
        w.close().unwrap();
        let none = read_model(&empty, Some(&wanted)).unwrap();
        assert_eq!(none.num_rows(), 0);
        assert_eq!(none.schema().fields().len(), 2);
        assert_eq!(none.schema().field(0).metadata(), &label);
    }
}
