//! Ingest against the project's real source specs: the golden fixture, every
//! file-level problem the contract names, pseudonymised deliveries, Parquet,
//! manifests, and a property test that no input panics the CSV path.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::pretty_format_batches;
use koppel_contract::IdentifierMode;
use koppel_contract::files::manifest_path;
use koppel_contract::meta::*;
use koppel_ingest::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn spec(source: &str) -> SourceSpec {
    SourceSpec::from_path(&repo().join(format!("pipelines/sources/{source}.yaml"))).unwrap()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn read_all(
    path: &Path,
    spec: &SourceSpec,
) -> Result<(Vec<RecordBatch>, DeliverySummary), IngestError> {
    let mut reader = DeliveryReader::open(path, spec, ReadOptions::default())?;
    let mut batches = Vec::new();
    while let Some(b) = reader.next_batch()? {
        batches.push(b);
    }
    Ok((batches, reader.finish()?))
}

/// A stream that hands out a few bytes at a time, as a decrypting reader
/// may: every read boundary falls somewhere else.
struct Dribble {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
}

impl std::io::Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 13 + 1;
        let n = self.step.min(buf.len()).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// [`read_all`] over `content` as a stream, as the TTP reads a sealed
/// delivery; `name` names it in messages.
fn read_stream(
    name: &Path,
    content: &[u8],
    manifest: DeliveryManifest,
    spec: &SourceSpec,
) -> Result<(Vec<RecordBatch>, DeliverySummary), IngestError> {
    let stream = Dribble {
        bytes: content.to_vec(),
        at: 0,
        step: 0,
    };
    let mut reader = DeliveryReader::from_stream(
        name,
        Box::new(stream),
        manifest,
        spec,
        ReadOptions::default(),
    )?;
    let mut batches = Vec::new();
    while let Some(b) = reader.next_batch()? {
        batches.push(b);
    }
    Ok((batches, reader.finish()?))
}

/// A sink that keeps rejects for inspection.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Reject>>>);

impl RejectSink for Collect {
    fn reject(&mut self, r: &Reject) -> std::io::Result<()> {
        self.0.lock().unwrap().push(r.clone());
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Read options whose rejects land in the returned collector.
fn collecting() -> (Collect, ReadOptions) {
    let sink = Collect::default();
    let options = ReadOptions {
        reject_sink: Some(Box::new(sink.clone())),
        ..ReadOptions::default()
    };
    (sink, options)
}

const PFZW_HEADER: &str = "BSN;WERKGEVER_KVK;PERIODE;GEBOORTEDATUM;GESLACHT;POSTCODE4;CONTRACTSOORT;UREN_PER_WEEK;BRUTO_MAANDLOON;ORT_BEDRAG;FWG_FUNCTIECODE;BRANCHE;DATUM_IN_DIENST;DATUM_UIT_DIENST";
const FWG_HEADER: &str = "FUNCTIECODE;FUNCTIENAAM;FWG_NIVEAU;FYSIEKE_BELASTING;PSYCHISCHE_BELASTING;RISICO_LETSEL;BEZWARENDE_OMSTANDIGHEDEN;ONREGELMATIG";
const PFZW_ROW: &str =
    "111222333;12345678;202401;1980-05-17;V;3511;VAST;32,00;3456,78;120,50;0450;VVT;2015-03-01;";

#[test]
fn every_source_spec_loads() {
    let set = SpecSet::load_dir(&repo().join("pipelines/sources")).unwrap();
    assert_eq!(
        set.names(),
        [
            "fwg_functiekenmerken",
            "intrakoop_jaarverslagen",
            "izz_monitor",
            "izz_verzekerden",
            "izz_zorggebruik",
            "pfzw_dienstverbanden",
            "vernet_verzuimmeldingen"
        ]
    );
}

/// The committed fixture exercises header quirks (BOM, CRLF, case, stray
/// white space, order), quoting, padding, decimal comma, and one row per
/// rule. Its accepted rows and rejects are compared with committed output;
/// set `KOPPEL_BLESS=1` to rewrite the expected files after a deliberate
/// change.
#[test]
fn golden_pfzw_fixture() {
    let fixture = repo().join("tests/fixtures/pfzw_golden.csv");
    let (sink, options) = collecting();
    let mut reader =
        DeliveryReader::open(&fixture, &spec("pfzw_dienstverbanden"), options).unwrap();
    let mut batches = Vec::new();
    while let Some(b) = reader.next_batch().unwrap() {
        batches.push(b);
    }
    let summary = reader.finish().unwrap();
    let mut actual = pretty_format_batches(&batches).unwrap().to_string();
    actual.push('\n');
    for r in sink.0.lock().unwrap().iter() {
        actual.push_str(&format!(
            "{} {} {} {}\n",
            r.line,
            r.column,
            r.rule,
            r.value.as_deref().unwrap_or("-")
        ));
    }
    let expected_path = repo().join("tests/fixtures/pfzw_golden.expected.txt");
    if std::env::var_os("KOPPEL_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    assert_eq!(actual, expected, "golden output changed");

    assert_eq!(summary.rows_read, 8);
    assert_eq!(summary.rows_accepted, 2);
    assert_eq!(summary.rows_rejected, 6);
    assert_eq!(summary.count("bsn", Rule::InvalidBsn), 1);
    assert_eq!(summary.count("employer_kvk", Rule::InvalidKvk), 1);
    assert_eq!(summary.count("birth_date", Rule::InvalidDate), 1);
    assert_eq!(summary.count("birth_date", Rule::TooYoung), 1);
    assert_eq!(summary.count("sex", Rule::NotInEnum), 1);
    assert_eq!(summary.count("postcode4", Rule::OutOfRange), 1);
    assert_eq!(summary.count("gross_monthly_wage", Rule::InvalidDecimal), 1);
    assert_eq!(summary.count("fwg_function_code", Rule::InvalidCode), 1);
    // 6 of 8 rows rejected is far above the 1% the source allows.
    assert!(matches!(summary.verdict, Verdict::Failed { .. }));

    // The same delivery read as a stream gives the same rows and verdict.
    let content = std::fs::read(&fixture).unwrap();
    let manifest = DeliveryManifest::describe(
        &fixture,
        "pfzw_dienstverbanden",
        "2024",
        8,
        IdentifierMode::Raw,
    )
    .unwrap();
    let (streamed, streamed_summary) =
        read_stream(&fixture, &content, manifest, &spec("pfzw_dienstverbanden")).unwrap();
    assert_eq!(streamed, batches);
    assert_eq!(streamed_summary.rows_rejected, 6);
    assert_eq!(streamed_summary.verdict, summary.verdict);
}

#[test]
fn canonical_schema_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.csv", format!("{PFZW_HEADER}\n{PFZW_ROW}\n"));
    let (batches, summary) = read_all(&file, &spec("pfzw_dienstverbanden")).unwrap();
    assert!(summary.accepted());
    let schema = batches[0].schema();
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("bsn"), DataType::Utf8);
    assert_eq!(ty("period"), DataType::Date32);
    assert_eq!(ty("birth_date"), DataType::Date32);
    assert_eq!(ty("hours_per_week"), DataType::Float64);
    assert_eq!(ty("postcode4"), DataType::Int64);
    assert!(matches!(ty("sex"), DataType::Dictionary(..)));
    assert_eq!(
        schema
            .field_with_name("bsn")
            .unwrap()
            .metadata()
            .get(META_IDENTIFIER)
            .map(String::as_str),
        Some("bsn")
    );
    assert!(!schema.field_with_name("bsn").unwrap().is_nullable());
    assert!(
        schema
            .field_with_name("employment_end")
            .unwrap()
            .is_nullable()
    );
}

#[test]
fn memory_is_bounded_by_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..1000).map(|_| format!("{PFZW_ROW}\n")).collect();
    let file = write(dir.path(), "p.csv", format!("{PFZW_HEADER}\n{body}"));
    let options = ReadOptions {
        batch_size: 64,
        ..ReadOptions::default()
    };
    let reader = DeliveryReader::open(&file, &spec("pfzw_dienstverbanden"), options).unwrap();
    let sizes: Vec<usize> = reader.map(|b| b.unwrap().num_rows()).collect();
    assert_eq!(sizes.len(), 16);
    assert!(sizes.iter().all(|&n| n <= 64));
    assert_eq!(sizes.iter().sum::<usize>(), 1000);
}

#[test]
fn cross_field_rules_for_absence() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "v.csv",
        "BSN;KVK_NUMMER;ZIEKMELDING;HERSTELMELDING;VERZUIMPERCENTAGE\n\
         111222333;12345678;01-03-2024;05-03-2024;100\n\
         111222333;12345678;01-03-2024;;50\n\
         111222333;12345678;01-03-2024;01-03-2024;100\n\
         111222333;12345678;01-03-2024;29-02-2024;100\n\
         111222333;12345678;31-04-2024;;100\n\
         111222333;12345678;01-03-2024;;0\n",
    );
    let (batches, s) = read_all(&file, &spec("vernet_verzuimmeldingen")).unwrap();
    assert_eq!(s.rows_accepted, 3);
    assert_eq!(s.count("recovered_on", Rule::DateOrder), 1);
    assert_eq!(s.count("sick_from", Rule::InvalidDate), 1);
    assert_eq!(s.count("absence_pct", Rule::OutOfRange), 1);
    let open = batches[0].column_by_name("recovered_on").unwrap();
    assert_eq!(open.null_count(), 1, "an open episode stays null");
}

#[test]
fn months_and_required_fields() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        PFZW_ROW.to_owned(),
        PFZW_ROW.replace(";202401;", ";202413;"),
        PFZW_ROW.replace(";202401;", ";2024-01;"),
        PFZW_ROW.replace(";VVT;", ";;"),
        PFZW_ROW.replace(";VVT;", "; VVT ;"),
        PFZW_ROW.replace(";3511;", ";;"),
    ];
    let file = write(
        dir.path(),
        "p.csv",
        format!("{PFZW_HEADER}\n{}\n", rows.join("\n")),
    );
    let (batches, s) = read_all(&file, &spec("pfzw_dienstverbanden")).unwrap();
    assert_eq!(s.count("period", Rule::InvalidMonth), 2);
    assert_eq!(s.count("sector", Rule::Required), 1);
    assert_eq!(
        s.rows_accepted, 3,
        "white space around a value and an empty optional field are fine"
    );
    let postcodes = batches[0].column_by_name("postcode4").unwrap();
    assert_eq!(postcodes.null_count(), 1);
}

#[test]
fn fwg_codes_must_be_unique() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "f.csv",
        format!(
            "{FWG_HEADER}\n0450;Verzorgende IG;45;4;3;3;2;J\n0451;\"Verpleegkundige; nacht\";50;3;4;2;1;N\n0450;Dubbel;45;4;3;3;2;J\n0452;Te hoog;85;4;3;3;2;J\n"
        ),
    );
    let (batches, s) = read_all(&file, &spec("fwg_functiekenmerken")).unwrap();
    assert_eq!(s.rows_accepted, 2);
    assert_eq!(s.count("fwg_function_code", Rule::Duplicate), 1);
    assert_eq!(s.count("fwg_level", Rule::OutOfRange), 1);
    assert!(!s.accepted(), "a reference table allows no rejects");
    assert_eq!(s.identifier_mode, None, "FWG holds no identifiers");
    let titles = batches[0].column_by_name("function_title").unwrap();
    assert_eq!(titles.as_string::<i32>().value(1), "Verpleegkundige; nacht");
    let irregular = batches[0]
        .column_by_name("irregular_hours")
        .unwrap()
        .as_boolean();
    assert!(irregular.value(0) && !irregular.value(1));
}

#[test]
fn pre_pseudonymised_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    // The contract's test vectors: valid stage-1 pseudonyms.
    let p1_bsn = "f80ce1cdf1a48876ab00530de42b5ef61e90658b86720874e31a39dc5a516692";
    let file = write(
        dir.path(),
        "i.csv",
        format!(
            "bsn_P1,jaar\n{p1_bsn},2024\n{},2024\n",
            p1_bsn.to_uppercase()
        ),
    );
    let (batches, s) = read_all(&file, &spec("izz_verzekerden")).unwrap();
    assert_eq!(s.identifier_mode, Some(IdentifierMode::PrePseudonymised));
    assert_eq!(s.count("bsn", Rule::InvalidPseudonym), 1);
    let col = batches[0].column_by_name("bsn_p1").unwrap();
    assert_eq!(col.data_type(), &DataType::FixedSizeBinary(32));
    assert_eq!(hex::encode(col.as_fixed_size_binary().value(0)), p1_bsn);

    // With a manifest that names the stage-1 key, the column carries its label.
    let rows = s.rows_read;
    let mut manifest = DeliveryManifest::describe(
        &file,
        "izz_verzekerden",
        "2024",
        rows,
        IdentifierMode::PrePseudonymised,
    )
    .unwrap();
    manifest.keys.push(KeyLabel {
        purpose: "stage1".into(),
        id: "stage1-preventieplan".into(),
        version: 2,
        fingerprint: "0011223344556677".into(),
    });
    manifest.write(&manifest_path(&file)).unwrap();
    let reader =
        DeliveryReader::open(&file, &spec("izz_verzekerden"), ReadOptions::default()).unwrap();
    let schema = reader.schema();
    let labels = schema.field_with_name("bsn_p1").unwrap().metadata();
    assert_eq!(labels[META_KEY_ID], "stage1-preventieplan");
    assert_eq!(labels[META_KEY_VERSION], "2");
    assert_eq!(labels[META_PSEUDONYM_STAGE], "p1");
    std::fs::remove_file(manifest_path(&file)).unwrap();

    // The pipeline can insist on a mode.
    let options = ReadOptions {
        identifier_mode: Some(IdentifierMode::Raw),
        ..ReadOptions::default()
    };
    let err = DeliveryReader::open(&file, &spec("izz_verzekerden"), options)
        .err()
        .unwrap();
    assert!(
        matches!(err, IngestError::IdentifierModeMismatch { .. }),
        "{err}"
    );
}

#[test]
fn identifiers_never_appear_in_rejects_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "i.csv",
        "bsn,jaar\n123456789,2024\n111222333,20x4\n",
    );
    let report = dir.path().join("rejects.csv");
    let options = ReadOptions {
        reject_sink: Some(Box::new(
            RejectReportWriter::create(&report, RejectReportFormat::Csv).unwrap(),
        )),
        ..ReadOptions::default()
    };
    let summary = validate_file(&file, &spec("izz_verzekerden"), options).unwrap();
    assert_eq!(summary.rows_rejected, 2);
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        text,
        "line,column,rule,value\n2,bsn,invalid_bsn,\n3,year,invalid_integer,20x4\n"
    );
    assert!(!text.contains("123456789") && !text.contains("111222333"));
    let json = serde_json::to_string(&summary).unwrap();
    assert!(!json.contains("123456789") && !json.contains("111222333"));
}

/// Each file-level problem the foundation issue lists: one clear error that
/// names the file (and line/field where there is one), never a panic.
#[test]
fn file_level_problems() {
    let dir = tempfile::tempdir().unwrap();
    let pfzw = spec("pfzw_dienstverbanden");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "is empty"),
        ("only_bom", b"\xEF\xBB\xBF\n".to_vec(), "is empty"),
        (
            "header_only",
            format!("{PFZW_HEADER}\n").into_bytes(),
            "no data rows",
        ),
        (
            "missing_column",
            format!(
                "{}\n{}\n",
                PFZW_HEADER.replace(";DATUM_UIT_DIENST", ""),
                PFZW_ROW.trim_end_matches(';')
            )
            .into_bytes(),
            "required column DATUM_UIT_DIENST is missing",
        ),
        (
            "unknown_column",
            format!("{PFZW_HEADER};EXTRA\n{PFZW_ROW};x\n").into_bytes(),
            ":1:15: unknown column \"EXTRA\"",
        ),
        (
            "duplicate_header",
            format!("{PFZW_HEADER};bsn\n{PFZW_ROW};x\n").into_bytes(),
            "appears more than once",
        ),
        (
            "wrong_delimiter",
            format!(
                "{}\n{}\n",
                PFZW_HEADER.replace(';', ","),
                PFZW_ROW.replace(';', ",")
            )
            .into_bytes(),
            "appears to use ','",
        ),
        (
            "invalid_utf8",
            format!(
                "{PFZW_HEADER}\n{PFZW_ROW}\n{}\n",
                PFZW_ROW.replace("VVT", "V\u{1}T")
            )
            .into_bytes()
            .into_iter()
            .map(|b| if b == 1 { 0xFF } else { b })
            .collect(),
            ":3:12: invalid UTF-8",
        ),
        (
            "nul_byte",
            format!("{PFZW_HEADER}\n{}\n", PFZW_ROW.replace("VAST", "VA\0T")).into_bytes(),
            ":2:7: NUL byte",
        ),
        (
            "ragged_row",
            format!("{PFZW_HEADER}\n{PFZW_ROW}\n{PFZW_ROW};extra\n").into_bytes(),
            ":3: ragged row: 15 fields where the header has 14",
        ),
        (
            "unterminated_quote",
            format!(
                "{PFZW_HEADER}\n{PFZW_ROW}\n{}\n{PFZW_ROW}\n",
                PFZW_ROW.replace("VAST", "\"VAST")
            )
            .into_bytes(),
            ":3: a quoted field opened on this line is never closed",
        ),
        (
            "unterminated_quote_last_field",
            format!("{PFZW_HEADER}\n{PFZW_ROW}\"\n").into_bytes(),
            ":2: a quoted field opened on this line is never closed",
        ),
        (
            "field_too_large",
            format!(
                "{PFZW_HEADER}\n{}\n",
                PFZW_ROW.replace("VVT", &"V".repeat(MAX_FIELD_BYTES + 1))
            )
            .into_bytes(),
            ":2:12: field exceeds the size limit",
        ),
        (
            // Far more than the tail a stream keeps behind its last record.
            "unterminated_quote_after_many_rows",
            format!(
                "{PFZW_HEADER}\n{}{}\n",
                format!("{PFZW_ROW}\n").repeat(40_000),
                PFZW_ROW.replace("VAST", "\"VAST")
            )
            .into_bytes(),
            ":40002: a quoted field opened on this line is never closed",
        ),
        (
            "record_too_large",
            format!(
                "{PFZW_HEADER}\n{PFZW_ROW}\n\"{}",
                "x".repeat(MAX_RECORD_BYTES * 2)
            )
            .into_bytes(),
            ":3: record exceeds the size limit",
        ),
    ];
    for (name, bytes, expect) in cases {
        let file = write(dir.path(), &format!("{name}.csv"), &bytes);
        let err = read_all(&file, &pfzw)
            .err()
            .unwrap_or_else(|| panic!("{name}: no error"));
        let msg = err.to_string();
        assert!(msg.contains(&format!("{name}.csv")), "{name}: {msg}");
        assert!(msg.contains(expect), "{name}: {msg}");
        // Read as a stream (no second look at a file possible), the same
        // problem gets the same message.
        let manifest = DeliveryManifest::describe(
            &file,
            "pfzw_dienstverbanden",
            "2024",
            1,
            IdentifierMode::Raw,
        )
        .unwrap();
        let streamed = read_stream(&file, &bytes, manifest, &pfzw)
            .err()
            .unwrap_or_else(|| panic!("{name}: no error from the stream"));
        assert_eq!(streamed.to_string(), msg, "{name}");
    }
}

/// Without a header row the first data row is taken for the header; the
/// error must not repeat what it found there, which may be an identifier.
#[test]
fn a_missing_header_row_does_not_leak_the_first_row() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "i.csv", "123456782,2024\n111222333,2024\n");
    let err = read_all(&file, &spec("izz_verzekerden"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("unknown column") && err.contains("header row missing"),
        "{err}"
    );
    assert!(!err.contains("123456782"), "{err}");
    let p1 = "f80ce1cdf1a48876ab00530de42b5ef61e90658b86720874e31a39dc5a516692";
    let file = write(dir.path(), "p.csv", format!("{p1},2024\n"));
    let err = read_all(&file, &spec("izz_verzekerden"))
        .err()
        .unwrap()
        .to_string();
    assert!(!err.contains(p1), "{err}");
}

#[test]
fn quoted_line_breaks_keep_line_numbers_right() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "f.csv",
        format!("{FWG_HEADER}\n0450;\"Twee\nregels\";45;4;3;3;2;J\n0451;Fout;45;4;3;3;2;Q\n"),
    );
    let (sink, options) = collecting();
    validate_file(&file, &spec("fwg_functiekenmerken"), options).unwrap();
    let rejects = sink.0.lock().unwrap();
    assert_eq!(rejects.len(), 1);
    assert_eq!((rejects[0].line, rejects[0].rule), (4, Rule::InvalidBool));
}

fn write_survey(path: &Path, bsn: Vec<Option<&str>>, year_type: DataType) {
    use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray};
    let n = bsn.len();
    let year: ArrayRef = match year_type {
        DataType::Int32 => Arc::new(Int32Array::from(vec![2024; n])),
        DataType::Int64 => Arc::new(Int64Array::from(vec![2024i64; n])),
        _ => Arc::new(StringArray::from(vec!["2024"; n])),
    };
    let score = |v: f64| -> ArrayRef { Arc::new(Float64Array::from(vec![Some(v); n])) };
    let mut workload = vec![Some(3.5); n];
    workload[n - 1] = Some(7.0);
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("bsn", Arc::new(StringArray::from(bsn))),
        ("jaar", year),
        ("werkdruk", Arc::new(Float64Array::from(workload))),
        ("emotionele_uitputting", score(2.0)),
        ("bevlogenheid", score(4.5)),
        ("empowering_leiderschap", score(3.0)),
        ("leerklimaat", score(3.0)),
        ("organisatieklimaat", score(3.0)),
        (
            "verzuim_zelfgerapporteerd",
            Arc::new(BooleanArray::from(vec![Some(true); n])),
        ),
        (
            "verzuim_werkgerelateerd",
            Arc::new(BooleanArray::from(vec![None; n])),
        ),
        ("vertrekintentie", score(1.0)),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None)
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn parquet_survey_by_column_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("izz_monitor_2024.parquet");
    write_survey(
        &file,
        vec![
            Some("111222333"),
            Some("123456789"),
            None,
            Some("123456782"),
        ],
        DataType::Int32,
    );
    let (sink, options) = collecting();
    let mut reader = DeliveryReader::open(&file, &spec("izz_monitor"), options).unwrap();
    let batch = reader.next_batch().unwrap().unwrap();
    let summary = reader.finish().unwrap();
    assert_eq!(summary.rows_read, 4);
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(summary.count("bsn", Rule::InvalidBsn), 1);
    assert_eq!(summary.count("bsn", Rule::Required), 1);
    assert_eq!(summary.count("workload", Rule::OutOfRange), 1);
    let lines: Vec<u64> = sink.0.lock().unwrap().iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3, 4]);
    assert_eq!(
        batch.column_by_name("year").unwrap().data_type(),
        &DataType::Int64
    );

    // A Parquet delivery that arrives as a stream is read into memory first.
    let manifest =
        DeliveryManifest::describe(&file, "izz_monitor", "2024", 4, IdentifierMode::Raw).unwrap();
    let content = std::fs::read(&file).unwrap();
    let (streamed, streamed_summary) =
        read_stream(&file, &content, manifest, &spec("izz_monitor")).unwrap();
    assert_eq!(streamed, std::slice::from_ref(&batch));
    assert_eq!(streamed_summary.rows_rejected, 3);

    // An Int64 year is fine too: columns are matched by type family.
    write_survey(&file, vec![Some("111222333")], DataType::Int64);
    assert_eq!(
        read_all(&file, &spec("izz_monitor")).unwrap().1.rows_read,
        1
    );
}

#[test]
fn parquet_schema_problems() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("izz_monitor_2024.parquet");
    write_survey(&file, vec![Some("111222333")], DataType::Utf8);
    let err = read_all(&file, &spec("izz_monitor"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("Parquet column jaar has type Utf8, expected an integer"),
        "{err}"
    );

    let mut without_year = spec("izz_monitor");
    without_year.columns.retain(|c| c.name != "year");
    without_year.columns.push(ColumnSpec {
        header: "afdeling".into(),
        name: "department".into(),
        kind: ColumnKind::Text,
        required: false,
        unique: false,
    });
    without_year.ignored_columns.push("jaar".into());
    let err = read_all(&file, &without_year).err().unwrap().to_string();
    assert!(err.contains("required column afdeling is missing"), "{err}");

    let not_parquet = write(
        dir.path(),
        "izz_monitor_x.parquet",
        b"PAR1 this is not parquet",
    );
    let err = read_all(&not_parquet, &spec("izz_monitor"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a readable Parquet file"), "{err}");
}

#[test]
fn manifest_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "izz_verzekerden_2024.csv",
        "bsn,jaar\n111222333,2024\n123456782,2024\n",
    );
    let spec = spec("izz_verzekerden");
    let manifest =
        DeliveryManifest::describe(&file, "izz_verzekerden", "2024", 2, IdentifierMode::Raw)
            .unwrap();
    manifest.write(&manifest_path(&file)).unwrap();
    let summary = validate_file(&file, &spec, ReadOptions::default()).unwrap();
    assert!(summary.manifest_verified);

    DeliveryManifest {
        rows: 3,
        ..manifest.clone()
    }
    .write(&manifest_path(&file))
    .unwrap();
    let err = validate_file(&file, &spec, ReadOptions::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("announces 3 rows, the file has 2"),
        "{err}"
    );

    manifest.write(&manifest_path(&file)).unwrap();
    std::fs::write(&file, "bsn,jaar\n111222333,2024\n123456782,2023\n").unwrap();
    let err = validate_file(&file, &spec, ReadOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, IngestError::ManifestChecksum { .. }), "{err}");
    // A stream (a sealed delivery decrypted as it is read) vouches for its
    // own checksum; the manifest's row count and source still count.
    let content = std::fs::read(&file).unwrap();
    let (_, summary) = read_stream(&file, &content, manifest.clone(), &spec).unwrap();
    assert_eq!(summary.rows_accepted, 2);
    assert!(summary.manifest_verified);
    let three = DeliveryManifest {
        rows: 3,
        ..manifest.clone()
    };
    let err = read_stream(&file, &content, three, &spec).err().unwrap();
    assert!(matches!(err, IngestError::ManifestRowCount { .. }), "{err}");
    let other = DeliveryManifest {
        source: "izz_zorggebruik".into(),
        ..manifest.clone()
    };
    let err = read_stream(&file, &content, other, &spec).err().unwrap();
    assert!(matches!(err, IngestError::ManifestSource { .. }), "{err}");

    DeliveryManifest {
        source: "izz_zorggebruik".into(),
        ..manifest.clone()
    }
    .write(&manifest_path(&file))
    .unwrap();
    let err = validate_file(&file, &spec, ReadOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, IngestError::ManifestSource { .. }), "{err}");

    std::fs::write(manifest_path(&file), "source: izz_verzekerden\nrows: 2\n").unwrap();
    let err = validate_file(&file, &spec, ReadOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, IngestError::ManifestInvalid { .. }), "{err}");
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    fn survive(bytes: &[u8], source: &str) {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "x.csv", bytes);
        // Any outcome but a panic is fine.
        let _ = read_all(&file, &spec(source));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            survive(&bytes, "vernet_verzuimmeldingen");
        }

        /// Bytes drawn from CSV's own alphabet reach much deeper than noise.
        #[test]
        fn csv_like_bytes(body in "[0-9;\"\r\n ,.A-Z-]{0,600}") {
            let text = format!("BSN;KVK_NUMMER;ZIEKMELDING;HERSTELMELDING;VERZUIMPERCENTAGE\n{body}");
            survive(text.as_bytes(), "vernet_verzuimmeldingen");
        }

        #[test]
        fn mutated_valid_rows(pos in 0usize..200, byte in any::<u8>()) {
            let mut text = format!("{PFZW_HEADER}\n{PFZW_ROW}\n{PFZW_ROW}\n").into_bytes();
            let at = PFZW_HEADER.len() + 1 + pos % (2 * PFZW_ROW.len());
            text[at] = byte;
            survive(&text, "pfzw_dienstverbanden");
        }
    }
}

#[test]
fn line_numbers_with_crlf_and_bom() {
    let dir = tempfile::tempdir().unwrap();
    for (name, prefix, eol) in [
        ("lf", "", "\n"),
        ("crlf", "", "\r\n"),
        ("bom", "\u{FEFF}", "\r\n"),
    ] {
        let file = write(
            dir.path(),
            &format!("{name}.csv"),
            format!("{prefix}bsn,jaar{eol}111222333,2024{eol}111222333,20x4{eol}"),
        );
        let (sink, options) = collecting();
        validate_file(&file, &spec("izz_verzekerden"), options).unwrap();
        assert_eq!(sink.0.lock().unwrap()[0].line, 3, "{name}");
    }
}
