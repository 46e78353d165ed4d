//! The project's source specs as text, compiled into every build, so a
//! partner's `koppel validate` and `koppel partner prepare` need no
//! checkout. The files in `pipelines/sources/` stay the ones to edit; a
//! spec folder on disk (`--specs`, `KOPPEL_SPECS`) still overrides these.

macro_rules! spec {
    ($file:literal) => {
        (
            $file,
            include_str!(concat!("../../../pipelines/sources/", $file)),
        )
    };
}

/// `(file name, YAML text)` of every source spec, in file-name order.
pub const SOURCE_SPECS: [(&str, &str); 7] = [
    spec!("fwg_functiekenmerken.yaml"),
    spec!("intrakoop_jaarverslagen.yaml"),
    spec!("izz_monitor.yaml"),
    spec!("izz_verzekerden.yaml"),
    spec!("izz_zorggebruik.yaml"),
    spec!("pfzw_dienstverbanden.yaml"),
    spec!("vernet_verzuimmeldingen.yaml"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;

    #[test]
    fn every_contract_source_has_its_spec_and_the_folder_nothing_else() {
        for source in Source::ALL {
            let file = format!("{}.yaml", source.contract_name());
            let (_, text) = SOURCE_SPECS
                .iter()
                .find(|(f, _)| *f == file)
                .unwrap_or_else(|| panic!("no embedded spec {file}"));
            assert!(text.contains(&format!("source: {}", source.contract_name())));
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines/sources");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = SOURCE_SPECS.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            on_disk, embedded,
            "pipelines/sources/ and the embedded specs differ"
        );
    }
}
