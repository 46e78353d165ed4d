//! k-anonymity by full-domain generalisation and local suppression, as
//! ARX does it.
//!
//! Quasi-identifiers arrive encoded: one code per row per level of their
//! hierarchy, [`NULL_CODE`] for a missing or suppressed value (a category
//! of its own). Optional strata (the year) split classes without being
//! generalised: a class never spans two strata.
//!
//! 1. The rows are reduced once to *base classes*: distinct combinations
//!    of stratum, level-0 codes and sensitive values, with counts. Every
//!    node of the lattice is evaluated on those, through per-level maps
//!    (a hierarchy is a function of the level-0 value), never on rows.
//! 2. A node (a level per quasi-identifier) is *acceptable* when the rows
//!    in classes smaller than k, or not distinct-l-diverse, are at most the
//!    suppression cap. Acceptability is monotone — generalising merges
//!    classes — so one evaluation settles a whole cone: everything above an
//!    acceptable node is acceptable, everything below an unacceptable one is
//!    not. Nodes are evaluated from the middle height outwards (a binary
//!    search over heights, as OLA and Flash do), a few in parallel.
//! 3. Among acceptable nodes the least information loss wins: the mean
//!    normalised generalisation height (Sweeney's Prec), which is monotone,
//!    so the winner is a minimal acceptable node; ties go to fewer
//!    suppressed rows, then to the lexicographically lowest node.
//! 4. Local suppression: rows still in unsafe classes get every
//!    quasi-identifier set to null. Within a stratum they join the rows
//!    whose quasi-identifiers were all unknown to begin with; if that
//!    all-null class is itself unsafe, its rows are dropped from the
//!    release. A final recount over the released rows must find every
//!    class safe, or the function fails instead of returning.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use rayon::prelude::*;
use serde::Serialize;
use thiserror::Error;

/// A missing or suppressed value.
pub const NULL_CODE: u32 = u32::MAX;

/// One quasi-identifier: `levels[l][row]` is the row's code at level `l`.
/// The last level should suppress everything, so the lattice has a safe top.
pub struct EncodedQuasiIdentifier {
    pub name: String,
    pub levels: Vec<Vec<u32>>,
}

/// A sensitive attribute for distinct l-diversity: every class must hold
/// at least `l` distinct codes (null is a value).
pub struct SensitiveAttribute {
    pub name: String,
    pub codes: Vec<u32>,
    pub l: usize,
}

pub struct KAnonymityParams {
    pub k: usize,
    /// Share of rows that local suppression may take (0.05 = 5%).
    pub max_suppression: f64,
    /// Weight of each quasi-identifier in the information loss (empty:
    /// all 1). A heavier one is generalised later: losing it costs more.
    pub weights: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KAnonymitySolution {
    /// Chosen level per quasi-identifier.
    pub levels: Vec<usize>,
    /// Rows whose quasi-identifiers are all set to null (sorted).
    pub suppressed_rows: Vec<u32>,
    /// Rows that cannot be released at all (sorted); a subset of neither.
    pub dropped_rows: Vec<u32>,
    /// Classes among released rows, and the smallest of them.
    pub classes: usize,
    pub smallest_class: usize,
    pub nodes_evaluated: usize,
    pub lattice_size: usize,
    pub information_loss: f64,
}

#[derive(Debug, Error)]
pub enum KAnonymityError {
    #[error("no quasi-identifiers declared")]
    NoQuasiIdentifiers,
    #[error("{0}: levels or codes of unequal length")]
    Shape(String),
    #[error("{name}: level {level} is not a function of level 0 (one value generalises two ways)")]
    NotAHierarchy { name: String, level: usize },
    #[error("{rows} rows cannot form a class of k = {k}")]
    TooFewRows { rows: usize, k: usize },
    #[error("the quasi-identifiers have too many combinations to count")]
    TooManyCombinations,
    #[error("no generalisation keeps local suppression within the cap, not even full suppression")]
    NoSolution,
    #[error("internal check failed: a released class of {0} rows")]
    Unsafe(usize),
}

/// A fast hasher for packed integer keys (they are already well mixed by
/// the radix packing; this only spreads them over the table).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 29;
    }
    fn write_u128(&mut self, v: u128) {
        let x = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        self.0 = (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 29;
    }
}

type KeyMap<V> = HashMap<u128, V, BuildHasherDefault<KeyHasher>>;

/// The rows reduced to distinct combinations.
struct BaseClasses {
    /// Stratum, level-0 dense codes and rows of each base class: the
    /// classes of the lattice's bottom node (with sensitive attributes,
    /// several base classes can share their codes).
    classes: ClassTable,
    /// `sensitive[a][b]`
    sensitive: Vec<Vec<u32>>,
    /// Base class of every row.
    of_row: Vec<u32>,
    strata: u32,
}

/// Dense codes: NULL becomes the code after the largest.
fn dense(code: u32, cardinality: u32) -> u32 {
    if code == NULL_CODE { cardinality } else { code }
}

struct Lattice {
    /// Information-loss weight per quasi-identifier.
    weights: Vec<f64>,
    /// `levels[q]`: number of levels of quasi-identifier q.
    levels: Vec<usize>,
    /// `map[q][l][c0]`: the dense level-l code of dense level-0 code c0.
    map: Vec<Vec<Vec<u32>>>,
    /// `radix[q][l]`: dense cardinality (null included) at level l.
    radix: Vec<Vec<u128>>,
    /// `refines[q][m][n]` (m ≤ n): whether level n is a function of
    /// level m over the codes that occur (as in every hierarchy that only
    /// merges categories). Where it is not, classes at level m cannot be
    /// rolled up to level n.
    refines: Vec<Vec<Vec<bool>>>,
}

impl Lattice {
    fn size(&self) -> usize {
        self.levels.iter().product()
    }

    fn node(&self, mut index: usize) -> Vec<usize> {
        self.levels
            .iter()
            .map(|&n| {
                let l = index % n;
                index /= n;
                l
            })
            .collect()
    }

    /// Whether classes at `from` can be rolled up to `to`.
    fn rolls_up(&self, from: &[usize], to: &[usize]) -> bool {
        from.iter()
            .zip(to)
            .enumerate()
            .all(|(q, (&m, &n))| m <= n && self.refines[q][m][n])
    }

    fn height(node: &[usize]) -> usize {
        node.iter().sum()
    }

    fn loss(&self, node: &[usize]) -> f64 {
        let parts: f64 = node
            .iter()
            .zip(&self.levels)
            .zip(&self.weights)
            .map(|((&l, &n), &w)| {
                if n > 1 {
                    w * l as f64 / (n - 1) as f64
                } else {
                    0.0
                }
            })
            .sum();
        parts / self.weights.iter().sum::<f64>()
    }
}

struct Evaluation {
    /// Rows in unsafe classes.
    unsafe_rows: usize,
}

/// The classes of one node, counted: per class its stratum, a level-0 code
/// per quasi-identifier that stands for it, and its rows. Every node above
/// can be counted from it instead of from the base classes (generalising
/// only merges classes), and most nodes have far fewer classes than there
/// are base classes — ARX's roll-up. Only without sensitive attributes:
/// distinct values do not add up.
struct ClassTable {
    node: Vec<usize>,
    stratum: Vec<u32>,
    /// `codes[q][c]`: the dense level-0 code of one of class c's base
    /// classes; `Lattice::map` gives its code at any level the table
    /// rolls up to.
    codes: Vec<Vec<u32>>,
    count: Vec<u32>,
}

impl ClassTable {
    fn len(&self) -> usize {
        self.count.len()
    }
}

/// The classes of a node as counted from a [`ClassTable`] below it.
struct RolledUp {
    /// Per class, its first row in the source table.
    first: Vec<u32>,
    count: Vec<u32>,
}

impl RolledUp {
    fn unsafe_rows(&self, k: usize) -> usize {
        self.count
            .iter()
            .map(|&c| c as usize)
            .filter(|&c| c < k)
            .sum()
    }

    /// The node's own table, from the first row of each class.
    fn table(self, from: &ClassTable, node: &[usize]) -> ClassTable {
        let codes = from
            .codes
            .iter()
            .map(|codes| self.first.iter().map(|&t| codes[t as usize]).collect())
            .collect();
        ClassTable {
            node: node.to_vec(),
            stratum: self
                .first
                .iter()
                .map(|&t| from.stratum[t as usize])
                .collect(),
            codes,
            count: self.count,
        }
    }
}

/// A class key packed in mixed radix: stratum, then a code per
/// quasi-identifier.
trait PackedKey:
    Copy
    + Eq
    + std::hash::Hash
    + From<u32>
    + std::ops::Mul<Output = Self>
    + std::ops::Add<Output = Self>
{
}
impl PackedKey for u64 {}
impl PackedKey for u128 {}

/// Classes a hash table may hold before counting switches to partitions:
/// about what stays in a core's cache.
const CACHED_CLASSES: usize = 1 << 15;

/// Rows after which counting looks at how many of them were distinct.
const SAMPLE_ROWS: usize = 1 << 14;

/// Rows per partition when counting many classes.
const PARTITION_ROWS: usize = 1 << 12;

/// Classes as they are met: a table from packed key to class number.
struct ClassCounter<K> {
    index: HashMap<K, u32, BuildHasherDefault<KeyHasher>>,
    out: RolledUp,
}

impl<K: PackedKey> ClassCounter<K> {
    fn new() -> Self {
        ClassCounter {
            index: HashMap::default(),
            out: RolledUp {
                first: Vec::new(),
                count: Vec::new(),
            },
        }
    }

    /// Row `t` of the source, of `rows` rows, has class `key`.
    fn add(&mut self, key: K, t: u32, rows: u32) {
        let next = self.out.count.len() as u32;
        let class = *self.index.entry(key).or_insert(next);
        if class == next {
            self.out.first.push(t);
            self.out.count.push(0);
        }
        self.out.count[class as usize] += rows;
    }
}

/// `lift[q]` maps a dense level-0 code to the node's level of
/// quasi-identifier q, `radix[q]` is that level's dense cardinality.
fn count_classes<K: PackedKey>(from: &ClassTable, lift: &[&[u32]], radix: &[K]) -> RolledUp {
    let key = |t: usize| -> K {
        let mut key = K::from(from.stratum[t]);
        for (q, (lift, &radix)) in lift.iter().zip(radix).enumerate() {
            key = key * radix + K::from(lift[from.codes[q][t] as usize]);
        }
        key
    };
    // Most nodes have few classes: one table, in cache, counts them.
    let mut counter = ClassCounter::new();
    for t in 0..from.len() {
        counter.add(key(t), t as u32, from.count[t]);
        // Past the cache's size, or when the first rows were mostly
        // distinct (a sign of many classes, the rows being in no order of
        // the key), counting goes by partitions.
        let classes = counter.index.len();
        if classes > CACHED_CLASSES || (t + 1 == SAMPLE_ROWS && classes * 2 > SAMPLE_ROWS) {
            return count_partitioned(from.len(), key, &from.count);
        }
    }
    counter.out
}

/// Counting with a table too large for the cache misses it on nearly
/// every row (three times slower measured at 185,000 classes): the rows
/// are first partitioned by key hash, so that each partition's table fits.
fn count_partitioned<K: PackedKey>(
    rows: usize,
    key: impl Fn(usize) -> K,
    count: &[u32],
) -> RolledUp {
    let hasher = BuildHasherDefault::<KeyHasher>::default();
    let bits = rows
        .div_ceil(PARTITION_ROWS)
        .next_power_of_two()
        .trailing_zeros()
        .clamp(1, 8);
    let parts = 1usize << bits;
    let keys: Vec<K> = (0..rows).map(key).collect();
    // Bits from the middle of the hash: the table uses the low ones for
    // the bucket and the high ones for its tags.
    let part: Vec<u8> = keys
        .iter()
        .map(|k| ((hasher.hash_one(k) >> 40) as usize & (parts - 1)) as u8)
        .collect();
    let mut start = vec![0usize; parts + 1];
    for &p in &part {
        start[p as usize + 1] += 1;
    }
    for p in 0..parts {
        start[p + 1] += start[p];
    }
    let mut fill = start.clone();
    let mut partitioned: Vec<(K, u32)> = vec![(K::from(0), 0); rows];
    for (t, (&k, &p)) in keys.iter().zip(&part).enumerate() {
        partitioned[fill[p as usize]] = (k, t as u32);
        fill[p as usize] += 1;
    }
    drop(keys);
    let mut counter = ClassCounter::new();
    for p in 0..parts {
        counter.index.clear();
        for &(k, t) in &partitioned[start[p]..start[p + 1]] {
            counter.add(k, t, count[t as usize]);
        }
    }
    counter.out
}

/// Class tables to roll up from: the base classes, and tables of
/// evaluated nodes kept within a budget of rows (each row is a stratum, a
/// count and a code per quasi-identifier).
struct TableCache<'a> {
    base: &'a ClassTable,
    kept: Vec<ClassTable>,
    budget: usize,
}

impl TableCache<'_> {
    fn tables(&self) -> impl Iterator<Item = &ClassTable> {
        std::iter::once(self.base).chain(&self.kept)
    }

    /// Whether a table of `classes` classes at `node` is worth keeping:
    /// at most half the size of every table below it (else those serve as
    /// well), and within the budget.
    fn wants(&self, node: &[usize], classes: usize, lattice: &Lattice) -> bool {
        let kept: usize = self.kept.iter().map(ClassTable::len).sum();
        kept + classes <= self.budget
            && self
                .tables()
                .filter(|t| lattice.rolls_up(&t.node, node))
                .all(|t| classes * 2 <= t.len())
    }

    fn offer(&mut self, table: ClassTable, lattice: &Lattice) {
        if self.wants(&table.node, table.len(), lattice) {
            self.kept.push(table);
        }
    }

    /// The smallest table that `node` can be counted from.
    fn source(&self, node: &[usize], lattice: &Lattice) -> &ClassTable {
        self.tables()
            .filter(|t| lattice.rolls_up(&t.node, node))
            .min_by_key(|t| t.len())
            .expect("every node rolls up from the base classes")
    }
}

struct Problem<'a> {
    base: BaseClasses,
    lattice: Lattice,
    sensitive: &'a [SensitiveAttribute],
    k: usize,
}

impl Problem<'_> {
    fn key(&self, node: &[usize], b: usize) -> u128 {
        let mut key = u128::from(self.base.classes.stratum[b]);
        for (q, &l) in node.iter().enumerate() {
            let code = self.lattice.map[q][l][self.base.classes.codes[q][b] as usize];
            key = key * self.lattice.radix[q][l] + u128::from(code);
        }
        key
    }

    /// Class sizes and, with sensitive attributes, distinct values per
    /// class and attribute.
    fn classes(&self, node: &[usize]) -> (KeyMap<usize>, KeyMap<Vec<usize>>) {
        let n = self.base.classes.len();
        let mut sizes: KeyMap<usize> = KeyMap::default();
        let mut diversity: KeyMap<Vec<usize>> = KeyMap::default();
        let mut seen: HashSet<(u128, usize, u32), BuildHasherDefault<KeyHasher>> =
            HashSet::default();
        for b in 0..n {
            let key = self.key(node, b);
            *sizes.entry(key).or_default() += self.base.classes.count[b] as usize;
            for (a, values) in self.base.sensitive.iter().enumerate() {
                if seen.insert((key, a, values[b])) {
                    diversity
                        .entry(key)
                        .or_insert_with(|| vec![0; self.sensitive.len()])[a] += 1;
                }
            }
        }
        (sizes, diversity)
    }

    /// The classes of `node`, counted from the classes of a node below it:
    /// per class its first row in `from` and its rows. The packed key
    /// fits 64 bits at nearly every node, and a table of 64-bit keys is
    /// half the memory traffic of 128-bit ones.
    fn roll_up(&self, from: &ClassTable, node: &[usize]) -> RolledUp {
        let lattice = &self.lattice;
        debug_assert!(lattice.rolls_up(&from.node, node));
        let lift: Vec<&[u32]> = node
            .iter()
            .enumerate()
            .map(|(q, &n)| lattice.map[q][n].as_slice())
            .collect();
        let radix: Vec<u128> = node
            .iter()
            .enumerate()
            .map(|(q, &n)| lattice.radix[q][n])
            .collect();
        let span = radix
            .iter()
            .try_fold(u128::from(self.base.strata), |span, &r| span.checked_mul(r));
        match span {
            Some(span) if span <= u128::from(u64::MAX) => {
                let radix: Vec<u64> = radix.iter().map(|&r| r as u64).collect();
                count_classes(from, &lift, &radix)
            }
            _ => count_classes(from, &lift, &radix),
        }
    }

    /// Rows in unsafe classes at `node`, and (without sensitive
    /// attributes) the node's class table if the cache wants it.
    fn count_unsafe(&self, node: &[usize], cache: &TableCache) -> (usize, Option<ClassTable>) {
        if !self.sensitive.is_empty() {
            return (self.evaluate(node).unsafe_rows, None);
        }
        let from = cache.source(node, &self.lattice);
        let rolled = self.roll_up(from, node);
        let unsafe_rows = rolled.unsafe_rows(self.k);
        let table = cache
            .wants(node, rolled.count.len(), &self.lattice)
            .then(|| rolled.table(from, node));
        (unsafe_rows, table)
    }

    fn safe(&self, size: usize, diversity: Option<&Vec<usize>>) -> bool {
        size >= self.k
            && self
                .sensitive
                .iter()
                .enumerate()
                .all(|(a, s)| diversity.is_some_and(|d| d[a] >= s.l))
    }

    fn evaluate(&self, node: &[usize]) -> Evaluation {
        let (sizes, diversity) = self.classes(node);
        let unsafe_rows = sizes
            .iter()
            .filter(|(key, size)| !self.safe(**size, diversity.get(key)))
            .map(|(_, size)| *size)
            .sum();
        Evaluation { unsafe_rows }
    }
}

fn check_shape(
    qis: &[EncodedQuasiIdentifier],
    sensitive: &[SensitiveAttribute],
    strata: Option<&[u32]>,
) -> Result<usize, KAnonymityError> {
    let first = qis.first().ok_or(KAnonymityError::NoQuasiIdentifiers)?;
    let rows = first.levels.first().map_or(0, Vec::len);
    for q in qis {
        if q.levels.is_empty() || q.levels.iter().any(|l| l.len() != rows) {
            return Err(KAnonymityError::Shape(q.name.clone()));
        }
    }
    for s in sensitive {
        if s.codes.len() != rows {
            return Err(KAnonymityError::Shape(s.name.clone()));
        }
    }
    if strata.is_some_and(|s| s.len() != rows) {
        return Err(KAnonymityError::Shape("strata".into()));
    }
    Ok(rows)
}

fn build(
    qis: &[EncodedQuasiIdentifier],
    sensitive: &[SensitiveAttribute],
    strata: Option<&[u32]>,
    rows: usize,
) -> Result<(BaseClasses, Lattice), KAnonymityError> {
    // Dense cardinalities per level.
    let cardinality: Vec<Vec<u32>> = qis
        .iter()
        .map(|q| {
            q.levels
                .iter()
                .map(|l| {
                    l.iter()
                        .filter(|c| **c != NULL_CODE)
                        .map(|c| c + 1)
                        .max()
                        .unwrap_or(0)
                })
                .collect()
        })
        .collect();
    let mut map = Vec::with_capacity(qis.len());
    for (q, qi) in qis.iter().enumerate() {
        let c0 = cardinality[q][0];
        let mut per_level = Vec::with_capacity(qi.levels.len());
        for (l, codes) in qi.levels.iter().enumerate() {
            let mut m = vec![u32::MAX; c0 as usize + 1];
            for (&base, &code) in qi.levels[0].iter().zip(codes.iter()).take(rows) {
                let from = dense(base, c0) as usize;
                let to = dense(code, cardinality[q][l]);
                if m[from] == u32::MAX {
                    m[from] = to;
                } else if m[from] != to {
                    return Err(KAnonymityError::NotAHierarchy {
                        name: qi.name.clone(),
                        level: l,
                    });
                }
            }
            for v in &mut m {
                if *v == u32::MAX {
                    *v = 0;
                }
            }
            per_level.push(m);
        }
        map.push(per_level);
    }
    let radix: Vec<Vec<u128>> = cardinality
        .iter()
        .map(|c| c.iter().map(|c| u128::from(*c) + 1).collect())
        .collect();
    let mut lattice = Lattice {
        weights: vec![1.0; qis.len()],
        levels: qis.iter().map(|q| q.levels.len()).collect(),
        map,
        radix,
        refines: Vec::new(),
    };

    // Strata, densely renumbered in order.
    let mut stratum_codes: Vec<u32> = strata.map_or_else(Vec::new, <[u32]>::to_vec);
    stratum_codes.sort_unstable();
    stratum_codes.dedup();
    let stratum_of = |row: usize| -> u32 {
        strata.map_or(0, |s| {
            stratum_codes.binary_search(&s[row]).expect("listed") as u32
        })
    };
    let strata_count = stratum_codes.len().max(1) as u32;

    // The key of every row must fit the packing at every node: the
    // largest radix of each quasi-identifier, which is level 0's unless
    // a hierarchy's codes are sparse.
    let mut span: u128 = u128::from(strata_count);
    for r in &lattice.radix {
        span = span
            .checked_mul(r.iter().copied().max().unwrap_or(1))
            .ok_or(KAnonymityError::TooManyCombinations)?;
    }
    let sens_cards: Vec<u32> = sensitive
        .iter()
        .map(|s| {
            s.codes
                .iter()
                .filter(|c| **c != NULL_CODE)
                .map(|c| c + 1)
                .max()
                .unwrap_or(0)
        })
        .collect();

    let mut index: HashMap<Vec<u32>, u32> = HashMap::new();
    let mut base = BaseClasses {
        classes: ClassTable {
            node: vec![0; qis.len()],
            stratum: Vec::new(),
            codes: vec![Vec::new(); qis.len()],
            count: Vec::new(),
        },
        sensitive: vec![Vec::new(); sensitive.len()],
        of_row: Vec::with_capacity(rows),
        strata: strata_count,
    };
    let mut key = Vec::with_capacity(1 + qis.len() + sensitive.len());
    for row in 0..rows {
        key.clear();
        key.push(stratum_of(row));
        for (q, qi) in qis.iter().enumerate() {
            key.push(dense(qi.levels[0][row], cardinality[q][0]));
        }
        for (a, s) in sensitive.iter().enumerate() {
            key.push(dense(s.codes[row], sens_cards[a]));
        }
        let classes = &mut base.classes;
        let next = classes.count.len() as u32;
        let b = *index.entry(key.clone()).or_insert(next);
        if b == next {
            classes.stratum.push(key[0]);
            for q in 0..qis.len() {
                classes.codes[q].push(key[1 + q]);
            }
            for a in 0..sensitive.len() {
                base.sensitive[a].push(key[1 + qis.len() + a]);
            }
            classes.count.push(0);
        }
        classes.count[b as usize] += 1;
        base.of_row.push(b);
    }
    lattice.refines = refinements(&lattice, &base);
    Ok((base, lattice))
}

/// `Lattice::refines`, from the level-0 codes that occur.
fn refinements(lattice: &Lattice, base: &BaseClasses) -> Vec<Vec<Vec<bool>>> {
    let mut all = Vec::with_capacity(lattice.map.len());
    for (q, map) in lattice.map.iter().enumerate() {
        let mut occurring: Vec<u32> = base.classes.codes[q].clone();
        occurring.sort_unstable();
        occurring.dedup();
        let mut per_from = Vec::with_capacity(map.len());
        for (m, from) in map.iter().enumerate() {
            let mut per_to = vec![false; m];
            for to in &map[m..] {
                let mut image: HashMap<u32, u32> = HashMap::new();
                per_to.push(occurring.iter().all(|&c0| {
                    let c0 = c0 as usize;
                    *image.entry(from[c0]).or_insert(to[c0]) == to[c0]
                }));
            }
            per_from.push(per_to);
        }
        all.push(per_from);
    }
    all
}

/// Finds the least generalisation that is k-anonymous (and l-diverse)
/// within the suppression cap, and the rows to suppress or drop.
pub fn anonymise(
    qis: &[EncodedQuasiIdentifier],
    sensitive: &[SensitiveAttribute],
    strata: Option<&[u32]>,
    params: &KAnonymityParams,
) -> Result<KAnonymitySolution, KAnonymityError> {
    let rows = check_shape(qis, sensitive, strata)?;
    if rows < params.k {
        return Err(KAnonymityError::TooFewRows { rows, k: params.k });
    }
    let (base, mut lattice) = build(qis, sensitive, strata, rows)?;
    if !params.weights.is_empty() {
        if params.weights.len() != qis.len()
            || params.weights.iter().any(|w| !w.is_finite() || *w <= 0.0)
        {
            return Err(KAnonymityError::Shape("weights".into()));
        }
        lattice.weights = params.weights.clone();
    }
    let problem = Problem {
        base,
        lattice,
        sensitive,
        k: params.k,
    };
    let cap = (params.max_suppression * rows as f64).floor() as usize;
    let size = problem.lattice.size();

    // Search: None = unknown, Some(true) = acceptable.
    let mut status: Vec<Option<bool>> = vec![None; size];
    let mut unsafe_rows: Vec<Option<usize>> = vec![None; size];
    let nodes: Vec<Vec<usize>> = (0..size).map(|i| problem.lattice.node(i)).collect();
    let max_height = problem.lattice.levels.iter().map(|n| n - 1).sum::<usize>();
    let middle = max_height / 2;
    let mut order: Vec<usize> = (0..size).collect();
    order.sort_by_key(|&i| {
        let h = Lattice::height(&nodes[i]);
        (h.abs_diff(middle), h, i)
    });
    let above = |a: &[usize], b: &[usize]| a.iter().zip(b).all(|(x, y)| x >= y);
    let mut evaluated = 0;
    let batch = rayon::current_num_threads().max(1) * 2;
    let mut cache = TableCache {
        base: &problem.base.classes,
        kept: Vec::new(),
        // Room for a few tables of the base's size; most kept ones are
        // far smaller.
        budget: problem.base.classes.len().saturating_mul(8),
    };
    let mut cursor = 0;
    while cursor < order.len() {
        let mut pick = Vec::with_capacity(batch);
        while cursor < order.len() && pick.len() < batch {
            let i = order[cursor];
            cursor += 1;
            if status[i].is_none() {
                pick.push(i);
            }
        }
        let results: Vec<(usize, (usize, Option<ClassTable>))> = pick
            .par_iter()
            .map(|&i| (i, problem.count_unsafe(&nodes[i], &cache)))
            .collect();
        evaluated += results.len();
        for (i, (unsafe_count, table)) in results {
            if let Some(table) = table {
                cache.offer(table, &problem.lattice);
            }
            unsafe_rows[i] = Some(unsafe_count);
            let ok = unsafe_count <= cap;
            status[i] = Some(ok);
            for j in 0..size {
                if status[j].is_none()
                    && ((ok && above(&nodes[j], &nodes[i])) || (!ok && above(&nodes[i], &nodes[j])))
                {
                    status[j] = Some(ok);
                }
            }
        }
    }

    // The least loss among acceptable nodes; its suppression breaks ties.
    let mut best: Option<(f64, usize, Vec<usize>)> = None;
    for (i, node) in nodes.iter().enumerate() {
        if status[i] != Some(true) {
            continue;
        }
        let loss = problem.lattice.loss(node);
        if best.as_ref().is_some_and(|(b, _, _)| loss > *b + 1e-12) {
            continue;
        }
        let count = match unsafe_rows[i] {
            Some(c) => c,
            None => {
                evaluated += 1;
                let c = problem.count_unsafe(node, &cache).0;
                unsafe_rows[i] = Some(c);
                c
            }
        };
        let better = match &best {
            None => true,
            Some((b, c, n)) => loss < *b - 1e-12 || (count, node) < (*c, n),
        };
        if better {
            best = Some((loss, count, node.clone()));
        }
    }
    let (information_loss, _, node) = best.ok_or(KAnonymityError::NoSolution)?;
    let mut solution = suppress(&problem, &node)?;
    solution.nodes_evaluated = evaluated;
    solution.lattice_size = size;
    solution.information_loss = information_loss;
    Ok(solution)
}

/// Local suppression at the chosen node, then the final recount.
fn suppress(problem: &Problem<'_>, node: &[usize]) -> Result<KAnonymitySolution, KAnonymityError> {
    let base = &problem.base;
    let (sizes, diversity) = problem.classes(node);
    let key_of: Vec<u128> = (0..base.classes.len())
        .map(|b| problem.key(node, b))
        .collect();
    let unsafe_base: Vec<bool> = key_of
        .iter()
        .map(|k| !problem.safe(sizes[k], diversity.get(k)))
        .collect();

    // The all-null key of each stratum: every quasi-identifier at its
    // dense null code.
    let null_key = |stratum: u32| -> u128 {
        let mut key = u128::from(stratum);
        for (q, &l) in node.iter().enumerate() {
            let radix = problem.lattice.radix[q][l];
            key = key * radix + (radix - 1);
        }
        key
    };
    // Rows of the all-null class per stratum after suppression, with
    // their sensitive values.
    let strata = base.strata as usize;
    let mut null_size = vec![0usize; strata];
    let mut null_values: Vec<Vec<HashSet<u32>>> =
        vec![vec![HashSet::new(); problem.sensitive.len()]; strata];
    for b in 0..base.classes.len() {
        let s = base.classes.stratum[b] as usize;
        if unsafe_base[b] || key_of[b] == null_key(base.classes.stratum[b]) {
            null_size[s] += base.classes.count[b] as usize;
            for (a, values) in base.sensitive.iter().enumerate() {
                null_values[s][a].insert(values[b]);
            }
        }
    }
    let null_safe: Vec<bool> = (0..strata)
        .map(|s| {
            null_size[s] == 0
                || (null_size[s] >= problem.k
                    && problem
                        .sensitive
                        .iter()
                        .enumerate()
                        .all(|(a, attr)| null_values[s][a].len() >= attr.l))
        })
        .collect();

    let mut suppressed_rows = Vec::new();
    let mut dropped_rows = Vec::new();
    let mut released: KeyMap<usize> = KeyMap::default();
    let mut released_values: HashSet<(u128, usize, u32), BuildHasherDefault<KeyHasher>> =
        HashSet::default();
    let mut released_diversity: KeyMap<Vec<usize>> = KeyMap::default();
    for (row, &b) in base.of_row.iter().enumerate() {
        let b = b as usize;
        let stratum = base.classes.stratum[b];
        let natural_null = key_of[b] == null_key(stratum);
        let in_null_class = unsafe_base[b] || natural_null;
        if in_null_class && !null_safe[stratum as usize] {
            dropped_rows.push(row as u32);
            continue;
        }
        let key = if unsafe_base[b] {
            if !natural_null {
                suppressed_rows.push(row as u32);
            }
            null_key(stratum)
        } else {
            key_of[b]
        };
        *released.entry(key).or_default() += 1;
        for (a, values) in base.sensitive.iter().enumerate() {
            if released_values.insert((key, a, values[b])) {
                released_diversity
                    .entry(key)
                    .or_insert_with(|| vec![0; problem.sensitive.len()])[a] += 1;
            }
        }
    }
    for (key, &size) in &released {
        if !problem.safe(size, released_diversity.get(key)) {
            return Err(KAnonymityError::Unsafe(size));
        }
    }
    Ok(KAnonymitySolution {
        levels: node.to_vec(),
        suppressed_rows,
        dropped_rows,
        classes: released.len(),
        smallest_class: released.values().copied().min().unwrap_or(0),
        nodes_evaluated: 0,
        lattice_size: 0,
        information_loss: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Levels by integer division: exact, /5, /10, suppressed.
    fn ages(values: &[u32]) -> EncodedQuasiIdentifier {
        EncodedQuasiIdentifier {
            name: "age".into(),
            levels: vec![
                values.to_vec(),
                values.iter().map(|v| v / 5).collect(),
                values.iter().map(|v| v / 10).collect(),
                vec![NULL_CODE; values.len()],
            ],
        }
    }

    fn categorical(name: &str, values: &[u32]) -> EncodedQuasiIdentifier {
        EncodedQuasiIdentifier {
            name: name.into(),
            levels: vec![values.to_vec(), vec![NULL_CODE; values.len()]],
        }
    }

    fn params(k: usize, cap: f64) -> KAnonymityParams {
        KAnonymityParams {
            k,
            max_suppression: cap,
            weights: vec![],
        }
    }

    #[test]
    fn a_heavier_quasi_identifier_is_kept_and_a_lighter_one_given_up() {
        // Four combinations of five rows: giving up either variable makes
        // two classes of ten.
        let a: Vec<u32> = (0..20).map(|i| i % 2).collect();
        let b: Vec<u32> = (0..20).map(|i| (i / 2) % 2).collect();
        let qis = [categorical("a", &a), categorical("b", &b)];
        let equal = anonymise(&qis, &[], None, &params(10, 0.0)).unwrap();
        let a_heavy = KAnonymityParams {
            weights: vec![3.0, 1.0],
            ..params(10, 0.0)
        };
        let b_heavy = KAnonymityParams {
            weights: vec![1.0, 3.0],
            ..params(10, 0.0)
        };
        assert_eq!(anonymise(&qis, &[], None, &a_heavy).unwrap().levels, [0, 1]);
        assert_eq!(anonymise(&qis, &[], None, &b_heavy).unwrap().levels, [1, 0]);
        assert!(equal.levels == [0, 1] || equal.levels == [1, 0]);
        // Weights must be positive and one per quasi-identifier.
        let bad = KAnonymityParams {
            weights: vec![1.0],
            ..params(10, 0.0)
        };
        assert!(anonymise(&qis, &[], None, &bad).is_err());
    }

    #[test]
    fn the_least_generalisation_within_the_cap_wins() {
        // 20 ages 20..=39, one each, and sex alternating: k = 3.
        let age: Vec<u32> = (20..40).collect();
        let sex: Vec<u32> = (0..20).map(|i| i % 2).collect();
        let qis = [ages(&age), categorical("sex", &sex)];
        let s = anonymise(&qis, &[], None, &params(3, 0.0)).unwrap();
        // 5-year bands with sex give classes of 2 or 3: unsafe. 5-year
        // bands without sex (loss 1/3·½ + ½ = 0.67) lose to 10-year bands
        // with sex (2/3·½ = 0.33), whose classes are 5 each.
        assert_eq!(s.levels, [2, 0]);
        assert_eq!(s.smallest_class, 5);
        assert_eq!(s.classes, 4);
        assert!(s.suppressed_rows.is_empty() && s.dropped_rows.is_empty());
        // For k = 2, 5-year bands with sex (classes of 2 and 3) suffice.
        let s = anonymise(&qis, &[], None, &params(2, 0.0)).unwrap();
        assert_eq!(s.levels, [1, 0]);
    }

    #[test]
    fn local_suppression_nulls_the_small_classes_and_drops_an_unsafe_null_class() {
        // 30 rows of age 30 and 2 outliers of 80 and 81.
        let mut age = vec![30; 30];
        age.extend([80, 81]);
        let qis = [ages(&age)];
        // Cap 10%: exact ages are acceptable with 2 rows suppressed; the
        // all-null class then has 2 < k rows, so they are dropped.
        let s = anonymise(&qis, &[], None, &params(3, 0.1)).unwrap();
        assert_eq!(s.levels, [0]);
        assert!(s.suppressed_rows.is_empty());
        assert_eq!(s.dropped_rows, [30, 31]);
        assert_eq!(s.smallest_class, 30);
        // With k = 2 the two outliers are safe nulls together.
        let s = anonymise(&qis, &[], None, &params(2, 0.1)).unwrap();
        assert_eq!(s.levels, [0]);
        // Exact 80 and 81 are classes of one: suppressed, they form a
        // null class of 2.
        assert_eq!(s.suppressed_rows, [30, 31]);
        assert!(s.dropped_rows.is_empty());
    }

    #[test]
    fn nulls_are_a_class_of_their_own_and_strata_split_classes() {
        let age = [NULL_CODE, NULL_CODE, 30, 30, 30, 30];
        let qis = [ages(&age)];
        let s = anonymise(&qis, &[], None, &params(2, 0.0)).unwrap();
        assert_eq!(s.levels, [0]);
        assert_eq!(s.classes, 2);
        // Split into two years of three rows: 1 null + 2 thirties each.
        let strata = [2023, 2024, 2023, 2024, 2023, 2024];
        let s = anonymise(&qis, &[], Some(&strata), &params(2, 0.0)).unwrap();
        assert_eq!(
            s.levels,
            [3],
            "only full suppression gives classes of 3 within a year"
        );
        assert_eq!(s.classes, 2);
    }

    #[test]
    fn l_diversity_forces_generalisation() {
        // Two age groups of 4; the younger all share one sensitive value.
        let age = [20, 21, 22, 23, 30, 31, 32, 33];
        let ggz = [0, 0, 0, 0, 0, 1, 0, 1];
        let qis = [ages(&age)];
        let plain = anonymise(&qis, &[], None, &params(4, 0.0)).unwrap();
        assert_eq!(plain.levels, [1]);
        let sensitive = [SensitiveAttribute {
            name: "ggz".into(),
            codes: ggz.to_vec(),
            l: 2,
        }];
        let s = anonymise(&qis, &sensitive, None, &params(4, 0.0)).unwrap();
        assert_eq!(s.levels, [3]);
    }

    #[test]
    fn a_value_generalising_two_ways_is_refused() {
        let qi = EncodedQuasiIdentifier {
            name: "x".into(),
            levels: vec![vec![1, 1], vec![0, 1], vec![NULL_CODE, NULL_CODE]],
        };
        assert!(matches!(
            anonymise(&[qi], &[], None, &params(2, 0.0)),
            Err(KAnonymityError::NotAHierarchy { .. })
        ));
    }

    /// Classes of the released rows, computed directly from the codes.
    fn released_classes(
        qis: &[EncodedQuasiIdentifier],
        s: &KAnonymitySolution,
        strata: &[u32],
        sens: &[u32],
    ) -> Vec<(usize, usize)> {
        let rows = strata.len();
        let mut classes: HashMap<Vec<u32>, (usize, HashSet<u32>)> = HashMap::new();
        for row in 0..rows {
            if s.dropped_rows.binary_search(&(row as u32)).is_ok() {
                continue;
            }
            let suppressed = s.suppressed_rows.binary_search(&(row as u32)).is_ok();
            let mut key = vec![strata[row]];
            for (q, &l) in qis.iter().zip(&s.levels) {
                key.push(if suppressed {
                    NULL_CODE
                } else {
                    q.levels[l][row]
                });
            }
            let e = classes.entry(key).or_default();
            e.0 += 1;
            e.1.insert(sens[row]);
        }
        classes.values().map(|(n, v)| (*n, v.len())).collect()
    }

    fn random_qi(name: &str, values: &[u32], depth: usize, divisor: u32) -> EncodedQuasiIdentifier {
        let mut levels = vec![values.to_vec()];
        for _ in 1..depth {
            let prev = levels.last().unwrap();
            levels.push(
                prev.iter()
                    .map(|v| {
                        if *v == NULL_CODE {
                            NULL_CODE
                        } else {
                            v / divisor
                        }
                    })
                    .collect(),
            );
        }
        levels.push(vec![NULL_CODE; values.len()]);
        EncodedQuasiIdentifier {
            name: name.into(),
            levels,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn every_released_class_is_safe(
            rows in proptest::collection::vec((0u32..40, 0u32..6, 0u32..3, 0u32..2, 0u32..3), 20..300),
            k in 2usize..6,
            cap in 0.0f64..0.2,
            l in 1usize..3,
        ) {
            let a: Vec<u32> = rows.iter().map(|r| if r.0 == 0 { NULL_CODE } else { r.0 }).collect();
            let b: Vec<u32> = rows.iter().map(|r| r.1).collect();
            let c: Vec<u32> = rows.iter().map(|r| r.2).collect();
            let strata: Vec<u32> = rows.iter().map(|r| r.3).collect();
            let sens: Vec<u32> = rows.iter().map(|r| r.4).collect();
            let qis = [random_qi("a", &a, 3, 4), random_qi("b", &b, 2, 3), random_qi("c", &c, 1, 2)];
            let sensitive = [SensitiveAttribute { name: "s".into(), codes: sens.clone(), l }];
            match anonymise(&qis, &sensitive, Some(&strata), &params(k, cap)) {
                Ok(s) => {
                    for (size, distinct) in released_classes(&qis, &s, &strata, &sens) {
                        prop_assert!(size >= k, "class of {}", size);
                        prop_assert!(distinct >= l);
                    }
                    prop_assert!(s.suppressed_rows.len() + s.dropped_rows.len() <= rows.len());
                    // The chosen node is minimal: against exhaustive search.
                    let problem_cap = (cap * rows.len() as f64).floor() as usize;
                    let (base, lattice) = build(&qis, &sensitive, Some(&strata), rows.len()).unwrap();
                    let p = Problem { base, lattice, sensitive: &sensitive, k };
                    let best = (0..p.lattice.size())
                        .map(|i| p.lattice.node(i))
                        .filter(|n| p.evaluate(n).unsafe_rows <= problem_cap)
                        .map(|n| p.lattice.loss(&n))
                        .fold(f64::INFINITY, f64::min);
                    prop_assert!((s.information_loss - best).abs() < 1e-9, "{} vs {}", s.information_loss, best);
                }
                Err(KAnonymityError::NoSolution) => {
                    // Only when even full suppression is unsafe in a stratum.
                }
                Err(e) => prop_assert!(false, "{}", e),
            }
        }

        /// Counting a node from any table below it gives what counting
        /// from the rows gives, and a level that is no function of a lower
        /// one (d's last two) is never rolled up across.
        #[test]
        fn rolled_up_counts_equal_counts_from_the_rows(
            rows in proptest::collection::vec((0u32..40, 0u32..6, 0u32..12, 0u32..2), 20..300),
            k in 2usize..6,
        ) {
            let a: Vec<u32> = rows.iter().map(|r| if r.0 == 0 { NULL_CODE } else { r.0 }).collect();
            let b: Vec<u32> = rows.iter().map(|r| r.1).collect();
            let d: Vec<u32> = rows.iter().map(|r| r.2).collect();
            let strata: Vec<u32> = rows.iter().map(|r| r.3).collect();
            let crossed = EncodedQuasiIdentifier {
                name: "d".into(),
                levels: vec![
                    d.clone(),
                    d.iter().map(|v| v % 3).collect(),
                    d.iter().map(|v| v / 4).collect(),
                    vec![NULL_CODE; d.len()],
                ],
            };
            let qis = [random_qi("a", &a, 3, 4), random_qi("b", &b, 2, 3), crossed];
            let (base, lattice) = build(&qis, &[], Some(&strata), rows.len()).unwrap();
            let p = Problem { base, lattice, sensitive: &[], k };
            let base_table = &p.base.classes;
            let nodes: Vec<Vec<usize>> = (0..p.lattice.size()).map(|i| p.lattice.node(i)).collect();
            let tables: Vec<ClassTable> = nodes
                .iter()
                .map(|n| p.roll_up(base_table, n).table(base_table, n))
                .collect();
            let d_levels = |m: usize, n: usize| nodes.iter().any(|x| x[2] == m) && nodes.iter().any(|y| y[2] == n);
            prop_assert!(d_levels(1, 2));
            for (from, table) in nodes.iter().zip(&tables) {
                for node in &nodes {
                    let expected = p.evaluate(node).unsafe_rows;
                    if p.lattice.rolls_up(from, node) {
                        prop_assert_eq!(p.roll_up(table, node).unsafe_rows(k), expected);
                    } else {
                        prop_assert!(from.iter().zip(node).any(|(m, n)| m > n) || (from[2] == 1 && node[2] == 2));
                    }
                }
            }
        }

        /// Without sensitive attributes (where tables are rolled up) the
        /// chosen node is still the least loss: against exhaustive search.
        #[test]
        fn roll_up_search_finds_the_least_loss(
            rows in proptest::collection::vec((0u32..40, 0u32..6, 0u32..3, 0u32..2), 20..300),
            k in 2usize..6,
            cap in 0.0f64..0.2,
        ) {
            let a: Vec<u32> = rows.iter().map(|r| if r.0 == 0 { NULL_CODE } else { r.0 }).collect();
            let b: Vec<u32> = rows.iter().map(|r| r.1).collect();
            let c: Vec<u32> = rows.iter().map(|r| r.2).collect();
            let strata: Vec<u32> = rows.iter().map(|r| r.3).collect();
            let qis = [random_qi("a", &a, 3, 4), random_qi("b", &b, 2, 3), random_qi("c", &c, 1, 2)];
            if let Ok(s) = anonymise(&qis, &[], Some(&strata), &params(k, cap)) {
                let problem_cap = (cap * rows.len() as f64).floor() as usize;
                let (base, lattice) = build(&qis, &[], Some(&strata), rows.len()).unwrap();
                let p = Problem { base, lattice, sensitive: &[], k };
                let best = (0..p.lattice.size())
                    .map(|i| p.lattice.node(i))
                    .filter(|n| p.evaluate(n).unsafe_rows <= problem_cap)
                    .map(|n| (p.lattice.loss(&n), n))
                    .fold((f64::INFINITY, vec![]), |a, b| if b.0 < a.0 - 1e-12 { b } else { a });
                prop_assert!((s.information_loss - best.0).abs() < 1e-9, "{} vs {}", s.information_loss, best.0);
            }
        }
    }

    /// Sparse codes at a higher level could overflow the packed key at
    /// that node: refused up front instead of counted wrongly.
    #[test]
    fn a_key_too_wide_at_any_level_is_refused() {
        let sparse = |name: &str| EncodedQuasiIdentifier {
            name: name.into(),
            levels: vec![
                (0..20).map(|v| v % 4).collect(),
                (0..20).map(|v| (v % 2) * (u32::MAX - 2)).collect(),
                vec![NULL_CODE; 20],
            ],
        };
        let qis: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| sparse(n))
            .collect();
        assert!(matches!(
            anonymise(&qis, &[], None, &params(2, 0.0)),
            Err(KAnonymityError::TooManyCombinations)
        ));
    }

    /// Past the cache-sized table, counting goes by partitions; the
    /// classes, their sizes and first rows are the same.
    #[test]
    fn many_classes_are_counted_by_partition_alike() {
        let rows = 3 * CACHED_CLASSES;
        let distinct = (CACHED_CLASSES + CACHED_CLASSES / 2) as u32;
        let table = ClassTable {
            node: vec![0],
            stratum: vec![0; rows],
            codes: vec![(0..rows as u32).map(|i| (i * 7919) % distinct).collect()],
            count: (0..rows as u32).map(|i| 1 + i % 3).collect(),
        };
        let identity: Vec<u32> = (0..distinct).collect();
        let rolled = count_classes::<u64>(&table, &[&identity], &[u64::from(distinct)]);
        assert_eq!(rolled.count.len(), distinct as usize);
        let mut expected = vec![0u32; distinct as usize];
        let mut first = vec![u32::MAX; distinct as usize];
        for t in 0..rows {
            let code = table.codes[0][t] as usize;
            expected[code] += table.count[t];
            first[code] = first[code].min(t as u32);
        }
        for (&f, &count) in rolled.first.iter().zip(&rolled.count) {
            let code = table.codes[0][f as usize] as usize;
            assert_eq!((f, count), (first[code], expected[code]));
        }
        let in_one = count_partitioned(rows, |t| u64::from(table.codes[0][t]), &table.count);
        assert_eq!(
            in_one.count.iter().sum::<u32>(),
            expected.iter().sum::<u32>()
        );
    }
}
