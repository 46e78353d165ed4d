//! The delivery contract's enumerations (sex, sector, contract type) as
//! small integer codes inside the linking plans.
//!
//! Why: the payroll backbone takes "the highest code" of sex and sector
//! per person × employer × year. As strings, DataFusion's `max` keeps one
//! heap-allocated copy per group and compares bytes per row (with the
//! dictionary cast before it, about a tenth of the backbone's time); as
//! integers it is a primitive maximum. The codes keep the order the
//! definitions use, so the maximum code is the code of the maximum value,
//! and are turned back into the contract's values before anything leaves
//! the backbone.
//!
//! A value the contract does not define cannot reach linking (ingest
//! checks every enumeration); should one arrive anyway, linking stops with
//! an error naming the column rather than give it some other value's code.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::exec_err;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// One enumeration of the contract, its values in code order (code 0
/// first).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContractCodes {
    /// The SQL function that codes a column: `<function>(column) → BIGINT`.
    pub function: &'static str,
    /// The column, for messages.
    pub column: &'static str,
    pub values: &'static [&'static str],
}

/// Sex (contract §1, `GESLACHT`), in byte order: the highest code is the
/// highest value.
pub const SEX: ContractCodes = ContractCodes {
    function: "sex_code",
    column: "sex",
    // The contract lists them in byte order already.
    values: koppel_contract::codes::SEX.values,
};

/// Sector (contract §1, `BRANCHE`), in byte order.
pub const SECTOR: ContractCodes = ContractCodes {
    function: "sector_code",
    column: "sector",
    values: &["GGZ", "GHZ", "HA", "JZ", "KO", "SW", "VVT", "ZKH"],
};

/// Contract type (contract §1, `CONTRACTSOORT`), in the order a month
/// delivered twice resolves: the later one in this list wins.
pub const CONTRACT_TYPE: ContractCodes = ContractCodes {
    function: "contract_code",
    column: "contract_type",
    // The contract's order is the precedence order.
    values: koppel_contract::codes::CONTRACT_TYPE.values,
};

impl ContractCodes {
    pub const ALL: [ContractCodes; 3] = [SEX, SECTOR, CONTRACT_TYPE];

    /// The code of one value.
    fn code(&self, value: &str) -> Option<i64> {
        self.values
            .iter()
            .position(|v| *v == value)
            .map(|i| i as i64)
    }

    /// SQL turning a code back into the contract's value (a string).
    pub fn decode(&self, code: &str) -> String {
        let arms: String = self
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!(" WHEN {i} THEN '{v}'"))
            .collect();
        format!("CASE {code}{arms} END")
    }

    /// The codes of a string column (plain, view or dictionary encoded);
    /// nulls stay null.
    fn codes_of(&self, column: &ArrayRef) -> Result<Int64Array, DataFusionError> {
        let codes = match column.as_any_dictionary_opt() {
            // Code each dictionary value once, then look the keys up.
            Some(dictionary) => take(
                &self.codes_of_values(dictionary.values())?,
                dictionary.keys(),
                None,
            )?
            .as_primitive()
            .clone(),
            None => self.codes_of_values(column)?,
        };
        // An undefined value is null among the codes; one a dictionary
        // holds but no row uses is no error.
        if codes.null_count() > column.logical_null_count() {
            return Err(self.undefined());
        }
        Ok(codes)
    }

    /// The code of each value, null where the value is null or undefined.
    fn codes_of_values(&self, column: &ArrayRef) -> Result<Int64Array, DataFusionError> {
        let strings = match column.data_type() {
            DataType::Utf8 => Arc::clone(column),
            DataType::LargeUtf8 | DataType::Utf8View => cast(column, &DataType::Utf8)?,
            other => {
                return exec_err!(
                    "{} takes the {} column as a string, not {other}",
                    self.function,
                    self.column
                );
            }
        };
        Ok(strings
            .as_string::<i32>()
            .iter()
            .map(|value| value.and_then(|v| self.code(v)))
            .collect())
    }

    fn undefined(&self) -> DataFusionError {
        DataFusionError::Execution(format!(
            "the {} column holds a value the delivery contract does not define (one of {} expected)",
            self.column,
            self.values.join(", ")
        ))
    }

    pub fn udf(&self) -> ScalarUDF {
        ScalarUDF::from(ContractCodeUdf {
            codes: self.clone(),
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ContractCodeUdf {
    codes: ContractCodes,
    signature: Signature,
}

impl ScalarUDFImpl for ContractCodeUdf {
    fn name(&self) -> &str {
        self.codes.function
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Int64)
    }

    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs,
    ) -> datafusion::common::Result<FieldRef> {
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(self.name(), DataType::Int64, nullable)))
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let [argument] = args.args.as_slice() else {
            return exec_err!("{} takes one column", self.codes.function);
        };
        let array = argument.to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(Arc::new(self.codes.codes_of(&array)?)))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{DictionaryArray, RecordBatch, StringArray, StringViewArray};
    use arrow::datatypes::{Int8Type, Int32Type, Int64Type};
    use datafusion::prelude::SessionContext;

    use super::*;

    /// Linking codes exactly the contract's values (in its own order), so
    /// an enumeration changed in the contract crate fails here first.
    #[test]
    fn codes_are_the_contract_s_values() {
        for (codes, contract) in [
            (SEX, koppel_contract::codes::SEX),
            (SECTOR, koppel_contract::codes::SECTOR),
            (CONTRACT_TYPE, koppel_contract::codes::CONTRACT_TYPE),
        ] {
            assert_eq!(codes.column, contract.column);
            let mut ours = codes.values.to_vec();
            let mut theirs = contract.values.to_vec();
            ours.sort_unstable();
            theirs.sort_unstable();
            assert_eq!(ours, theirs, "{}", codes.column);
        }
        // Sex and sector take "the highest value": their codes are in byte order.
        for codes in [SEX, SECTOR] {
            assert!(
                codes.values.windows(2).all(|w| w[0] < w[1]),
                "{}",
                codes.column
            );
        }
    }

    /// Codes follow byte order where the definitions take "the highest
    /// code", so the maximum code decodes to the maximum value.
    #[test]
    fn sex_and_sector_codes_follow_byte_order() {
        for codes in [SEX, SECTOR] {
            let mut sorted = codes.values.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, codes.values, "{}", codes.column);
        }
    }

    #[test]
    fn every_encoding_of_a_string_column_codes_alike() {
        let plain: ArrayRef = Arc::new(StringArray::from(vec![Some("VVT"), None, Some("GGZ")]));
        let view: ArrayRef = Arc::new(StringViewArray::from(vec![Some("VVT"), None, Some("GGZ")]));
        // An unused undefined value in a dictionary is no error.
        let dictionary: ArrayRef = Arc::new(
            DictionaryArray::<Int8Type>::try_new(
                vec![Some(1), None, Some(0)].into(),
                Arc::new(StringArray::from(vec!["GGZ", "VVT", "UNUSED"])),
            )
            .unwrap(),
        );
        let expected = Int64Array::from(vec![Some(6), None, Some(0)]);
        for column in [plain, view, dictionary] {
            assert_eq!(SECTOR.codes_of(&column).unwrap(), expected);
        }
    }

    #[test]
    fn an_undefined_value_is_an_error_that_names_the_column_not_the_value() {
        let plain: ArrayRef = Arc::new(StringArray::from(vec!["VVT", "XYZ"]));
        let dictionary: ArrayRef = Arc::new(
            DictionaryArray::<Int32Type>::try_new(
                vec![0, 1].into(),
                Arc::new(StringArray::from(vec!["VVT", "XYZ"])),
            )
            .unwrap(),
        );
        for column in [plain, dictionary] {
            let err = SECTOR.codes_of(&column).unwrap_err().to_string();
            assert!(err.contains("sector column"), "{err}");
            assert!(!err.contains("XYZ"), "{err}");
        }
        let number: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(SECTOR.codes_of(&number).is_err());
    }

    #[tokio::test]
    async fn codes_decode_to_the_values_in_sql() {
        let ctx = SessionContext::new();
        for codes in ContractCodes::ALL {
            ctx.register_udf(codes.udf());
        }
        let batch = RecordBatch::try_from_iter([(
            "contract_type",
            Arc::new(StringArray::from(vec!["OPROEP", "VAST", "TIJDELIJK"])) as ArrayRef,
        )])
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        let sql = format!(
            "SELECT contract_code(contract_type) AS code, {} AS value FROM t",
            CONTRACT_TYPE.decode("contract_code(contract_type)")
        );
        let out = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        assert_eq!(
            out[0].column(0).as_primitive::<Int64Type>(),
            &Int64Array::from(vec![2, 0, 1])
        );
        let values = arrow::compute::cast(out[0].column(1), &DataType::Utf8).unwrap();
        assert_eq!(
            values.as_string::<i32>(),
            &StringArray::from(vec!["OPROEP", "VAST", "TIJDELIJK"])
        );
    }
}
