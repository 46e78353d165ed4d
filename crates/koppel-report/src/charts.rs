//! The charts, drawn by plotters into SVG strings.
//!
//! plotters is built without a font engine: its fallback font data only
//! estimates text extents, and the SVG backend writes `<text>` elements
//! that the browser lays out with the page's fonts. Label areas are
//! therefore sized here from an estimate of each label's width.
//!
//! Every function returns `None` when there is nothing to draw or drawing
//! failed; the page then says so in words rather than show an empty frame.

use std::error::Error;
use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::fmt::{esc, nice_ticks, text_width, tick};

/// Width of every chart in SVG units; the page scales it to the column.
pub const WIDTH: u32 = 960;
/// Height of one bar row.
const ROW: u32 = 30;

pub const INK: RGBColor = RGBColor(0x1f, 0x29, 0x37);
pub const MUTED: RGBColor = RGBColor(0x5b, 0x66, 0x73);
const GRID: RGBColor = RGBColor(0xe3, 0xe7, 0xec);
const AXIS: RGBColor = RGBColor(0xb8, 0xc0, 0xca);
pub const TRACK: RGBColor = RGBColor(0xee, 0xf1, 0xf5);
pub const BLUE: RGBColor = RGBColor(0x2f, 0x6d, 0xb5);
pub const TEAL: RGBColor = RGBColor(0x2a, 0x8c, 0x82);
pub const AMBER: RGBColor = RGBColor(0xe0, 0x9a, 0x3a);
pub const RED: RGBColor = RGBColor(0xc0, 0x4a, 0x3a);
const EMPTY_CELL: RGBColor = RGBColor(0xf3, 0xf4, 0xf6);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn Error>>;

/// A text style of `px` pixels. The SVG backend writes the font size as
/// the style's size divided by 1.24, so the factor is put back here.
fn font(px: f64, color: &'static RGBColor) -> TextStyle<'static> {
    ("sans-serif", px * 1.24).into_font().color(color)
}

/// Draws into a fresh SVG and gives it a title for screen readers.
///
/// plotters' root tag carries fixed width and height and the SVG namespace;
/// inline in HTML the namespace is implied, and the size is left to the
/// stylesheet (through the view box), so the root tag is written anew.
fn svg(size: (u32, u32), title: &str, draw: impl FnOnce(&Area) -> Drawn) -> Option<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        draw(&root).ok()?;
        root.present().ok()?;
    }
    let body = buf.strip_prefix("<svg ")?;
    let body = round_font_sizes(&body[body.find('>')? + 1..]);
    Some(format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\">\n<title>{t}</title>{body}",
        w = size.0,
        h = size.1,
        t = esc(title),
    ))
}

/// Rounds the font sizes plotters writes (its size divided by 1.24, e.g.
/// `13.000000000000002`) to two decimals: tidier, and no long digit runs
/// for the release's leak guard to weigh as possible citizen numbers.
fn round_font_sizes(svg: &str) -> String {
    const ATTR: &str = "font-size=\"";
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(i) = rest.find(ATTR) {
        let (head, tail) = rest.split_at(i + ATTR.len());
        out.push_str(head);
        let end = tail.find('"').unwrap_or(tail.len());
        match tail[..end].parse::<f64>() {
            Ok(size) => out.push_str(&crate::fmt::decimal(size)),
            Err(_) => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A linear axis with ticks exactly where given: at round numbers, or at
/// the centre of each category row. (plotters' `with_key_points` would do,
/// but on an f64 axis it loses the label formatter the mesh needs.)
#[derive(Clone)]
struct Axis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

fn axis(range: Range<f64>, ticks: Vec<f64>) -> Axis {
    Axis { range, ticks }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.range.clone()).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light points would draw the faint in-between grid lines: none.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// The category positions on a y axis of `n` rows, first row on top.
fn row_centres(n: usize) -> Vec<f64> {
    (0..n).map(|i| n as f64 - i as f64 - 0.5).collect()
}

/// The row whose centre is at `y` (see `row_centres`).
fn row_at(n: usize, y: f64) -> Option<usize> {
    let i = (n as f64 - 0.5 - y).round();
    (i >= 0.0 && (i as usize) < n).then_some(i as usize)
}

/// A label cut to `max` characters: the chart's label area is bounded,
/// and the table beside the chart has the full text.
fn clip(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut cut: String = label.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

fn label_area(labels: impl Iterator<Item = impl AsRef<str>>, px: f64, max: u32) -> u32 {
    labels
        .map(|l| text_width(l.as_ref(), px))
        .max()
        .unwrap_or(0)
        .saturating_add(14)
        .clamp(40, max)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;

/// The zero line of horizontal bars. The mesh's own axis lines are hidden:
/// plotters puts labels right against them unless tick marks push them
/// away, and visible tick marks beside category labels are clutter.
fn baseline(chart: &mut Chart, rows: usize) -> Drawn {
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 0.0), (0.0, rows as f64)],
        AXIS.stroke_width(1),
    )))?;
    Ok(())
}

/// One horizontal bar: stacked segments from zero, and a note beside it.
#[derive(Debug, Clone)]
pub struct BarRow {
    pub label: String,
    pub segments: Vec<(f64, RGBColor)>,
    pub note: String,
}

/// How the value axis of a bar chart reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// 0–100%, bars on a light track, notes in a column on the right.
    Percent,
    /// Counts from zero, notes at the end of each bar.
    Count,
}

/// Horizontal bars, one per row, each possibly stacked.
pub fn bars(title: &str, rows: &[BarRow], scale: Scale) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    let n = rows.len();
    let label_w = label_area(rows.iter().map(|r| clip(&r.label, 52)), 12.5, 380);
    let note_w = label_area(rows.iter().map(|r| &r.note), 12.0, 200) + 6;
    let height = 10 + n as u32 * ROW + 30;
    let total = |r: &BarRow| r.segments.iter().map(|s| s.0.max(0.0)).sum::<f64>();
    let (x_max, ticks) = match scale {
        Scale::Percent => (100.0, vec![0.0, 25.0, 50.0, 75.0, 100.0]),
        Scale::Count => nice_ticks(rows.iter().map(total).fold(0.0, f64::max)),
    };
    svg((WIDTH, height), title, |root| {
        let centres = row_centres(n);
        let mut chart = ChartBuilder::on(root)
            .margin_top(10)
            .margin_left(4)
            .margin_right(note_w)
            .x_label_area_size(30)
            .y_label_area_size(label_w)
            .build_cartesian_2d(
                axis(0.0..x_max, ticks),
                axis(0.0..n as f64, centres.clone()),
            )?;
        let x_fmt = |x: &f64| match scale {
            Scale::Percent => format!("{}%", tick(*x)),
            Scale::Count => tick(*x),
        };
        let y_fmt = |y: &f64| row_at(n, *y).map_or(String::new(), |i| clip(&rows[i].label, 52));
        chart
            .configure_mesh()
            .disable_y_mesh()
            .bold_line_style(GRID)
            .axis_style(TRANSPARENT)
            .set_tick_mark_size(LabelAreaPosition::Left, 5)
            .set_tick_mark_size(LabelAreaPosition::Bottom, 3)
            .x_label_style(font(11.5, &MUTED))
            .y_label_style(font(12.5, &INK))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .draw()?;
        baseline(&mut chart, n)?;
        let half = 0.32;
        if scale == Scale::Percent {
            chart.draw_series(
                centres
                    .iter()
                    .map(|&y| Rectangle::new([(0.0, y - half), (x_max, y + half)], TRACK.filled())),
            )?;
        }
        for (row, &y) in rows.iter().zip(&centres) {
            let mut start = 0.0;
            let mut rects = Vec::new();
            for &(value, color) in &row.segments {
                let end = (start + value.max(0.0)).min(x_max);
                if end > start {
                    rects.push(Rectangle::new(
                        [(start, y - half), (end, y + half)],
                        color.filled(),
                    ));
                }
                start = end;
            }
            chart.draw_series(rects)?;
            let at = match scale {
                Scale::Percent => x_max,
                Scale::Count => start,
            };
            let note = EmptyElement::at((at, y))
                + Text::new(
                    row.note.clone(),
                    (8, 0),
                    font(12.0, &INK).pos(Pos::new(HPos::Left, VPos::Center)),
                );
            chart.draw_series(std::iter::once(note))?;
        }
        Ok(())
    })
}

/// A grid of shares (rows × columns) for each of several panels, side by
/// side, sharing the row labels on the left.
#[derive(Debug, Clone)]
pub struct HeatPanels {
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// Panel title and its shares in percent, `[row][column]`; `None` where
    /// the share has no denominator.
    pub panels: Vec<(String, Vec<Vec<Option<f64>>>)>,
}

/// The fill for a share: from a pale to a deep blue.
pub fn heat_color(p: f64) -> RGBColor {
    let t = (p / 100.0).clamp(0.0, 1.0);
    let lo = (0xf0, 0xf5, 0xfb);
    let hi = (0x17, 0x4a, 0x86);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    RGBColor(mix(lo.0, hi.0), mix(lo.1, hi.1), mix(lo.2, hi.2))
}

pub fn heat_panels(title: &str, heat: &HeatPanels) -> Option<String> {
    let (nr, nc, np) = (heat.rows.len(), heat.columns.len(), heat.panels.len());
    if nr == 0 || nc == 0 || np == 0 {
        return None;
    }
    let label_w = label_area(heat.rows.iter().map(|r| clip(r, 40)), 12.5, 300);
    let panel_w = (WIDTH - label_w) / np as u32;
    let cell_h = 26;
    let height = 30 + nr as u32 * cell_h + 26 + 6;
    let breaks: Vec<u32> = (1..np as u32).map(|i| label_w + i * panel_w).collect();
    svg((WIDTH, height), title, |root| {
        let areas = root.split_by_breakpoints(breaks, Vec::<u32>::new());
        let rows_y = row_centres(nr);
        let cols_x: Vec<f64> = (0..nc).map(|c| c as f64 + 0.5).collect();
        for (p, (area, (panel_title, shares))) in areas.iter().zip(&heat.panels).enumerate() {
            let mut chart = ChartBuilder::on(area)
                .caption(clip(panel_title, 28), font(13.0, &INK))
                .margin_top(4)
                .margin_right(6)
                .x_label_area_size(26)
                .y_label_area_size(if p == 0 { label_w } else { 0 })
                .build_cartesian_2d(
                    axis(0.0..nc as f64, cols_x.clone()),
                    axis(0.0..nr as f64, rows_y.clone()),
                )?;
            let x_fmt = |x: &f64| {
                let c = x.floor() as usize;
                heat.columns.get(c).map_or(String::new(), |s| clip(s, 8))
            };
            let y_fmt = |y: &f64| row_at(nr, *y).map_or(String::new(), |i| clip(&heat.rows[i], 40));
            chart
                .configure_mesh()
                .disable_mesh()
                .axis_style(TRANSPARENT)
                .set_all_tick_mark_size(4)
                .x_label_style(font(11.5, &MUTED))
                .y_label_style(font(12.5, &INK))
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .draw()?;
            for (r, &y) in rows_y.iter().enumerate() {
                for c in 0..nc {
                    let share = shares.get(r).and_then(|row| row.get(c)).copied().flatten();
                    let fill = share.map_or(EMPTY_CELL, heat_color);
                    let mut cell = Rectangle::new(
                        [(c as f64, y - 0.5), (c as f64 + 1.0, y + 0.5)],
                        fill.filled(),
                    );
                    cell.set_margin(1, 1, 1, 1);
                    chart.draw_series(std::iter::once(cell))?;
                    let (text, color) = match share {
                        Some(s) if s > 55.0 => (format!("{s:.0}"), &WHITE),
                        Some(s) => (format!("{s:.0}"), &INK),
                        None => ("–".to_string(), &MUTED),
                    };
                    let label = EmptyElement::at((c as f64 + 0.5, y))
                        + Text::new(
                            text,
                            (0, 0),
                            font(11.5, color).pos(Pos::new(HPos::Center, VPos::Center)),
                        );
                    chart.draw_series(std::iter::once(label))?;
                }
            }
        }
        Ok(())
    })
}

/// Persons per combination of sources: bars above, membership dots below.
#[derive(Debug, Clone)]
pub struct Upset {
    pub sources: Vec<String>,
    /// Membership per source (in `sources` order) and persons.
    pub combinations: Vec<(Vec<bool>, u64)>,
}

pub fn upset(title: &str, data: &Upset) -> Option<String> {
    let (ns, nc) = (data.sources.len(), data.combinations.len());
    if ns == 0 || nc == 0 {
        return None;
    }
    let max = data.combinations.iter().map(|c| c.1).max().unwrap_or(0) as f64;
    let (y_max, ticks) = nice_ticks(max);
    let label_w = label_area(
        data.sources
            .iter()
            .map(|s| clip(s, 40))
            .chain(ticks.iter().map(|t| tick(*t))),
        12.5,
        300,
    );
    let top_h = 230;
    let dot_h = 10 + ns as u32 * 24 + 8;
    svg((WIDTH, top_h + dot_h), title, |root| {
        let (top, bottom) = root.split_vertically(top_h);
        let xs: Vec<f64> = (0..nc).map(|i| i as f64 + 0.5).collect();
        let mut bars = ChartBuilder::on(&top)
            .margin_top(22)
            .margin_right(10)
            .y_label_area_size(label_w)
            .build_cartesian_2d(axis(0.0..nc as f64, xs.clone()), axis(0.0..y_max, ticks))?;
        let y_fmt = |y: &f64| tick(*y);
        bars.configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID)
            .axis_style(TRANSPARENT)
            .set_tick_mark_size(LabelAreaPosition::Left, 5)
            .y_label_style(font(11.5, &MUTED))
            .y_label_formatter(&y_fmt)
            .draw()?;
        bars.draw_series(data.combinations.iter().enumerate().map(|(i, c)| {
            Rectangle::new(
                [(i as f64 + 0.18, 0.0), (i as f64 + 0.82, c.1 as f64)],
                BLUE.filled(),
            )
        }))?;
        bars.draw_series(data.combinations.iter().enumerate().map(|(i, c)| {
            EmptyElement::at((i as f64 + 0.5, c.1 as f64))
                + Text::new(
                    tick(c.1 as f64),
                    (0, -4),
                    font(11.0, &INK).pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
        }))?;

        let ys = row_centres(ns);
        let mut dots = ChartBuilder::on(&bottom)
            .margin_top(10)
            .margin_bottom(8)
            .margin_right(10)
            .y_label_area_size(label_w)
            .build_cartesian_2d(axis(0.0..nc as f64, xs), axis(0.0..ns as f64, ys.clone()))?;
        let src_fmt =
            |y: &f64| row_at(ns, *y).map_or(String::new(), |i| clip(&data.sources[i], 40));
        dots.configure_mesh()
            .disable_mesh()
            .axis_style(TRANSPARENT)
            .set_all_tick_mark_size(5)
            .y_label_style(font(12.5, &INK))
            .y_label_formatter(&src_fmt)
            .draw()?;
        dots.draw_series(
            ys.iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(_, &y)| {
                    Rectangle::new([(0.0, y - 0.5), (nc as f64, y + 0.5)], TRACK.filled())
                }),
        )?;
        for (i, (members, _)) in data.combinations.iter().enumerate() {
            let x = i as f64 + 0.5;
            let member_ys: Vec<f64> = ys
                .iter()
                .zip(members)
                .filter(|(_, m)| **m)
                .map(|(y, _)| *y)
                .collect();
            if let (Some(hi), Some(lo)) = (
                member_ys.iter().copied().reduce(f64::max),
                member_ys.iter().copied().reduce(f64::min),
            ) {
                dots.draw_series(std::iter::once(PathElement::new(
                    vec![(x, lo), (x, hi)],
                    INK.stroke_width(2),
                )))?;
            }
            dots.draw_series(ys.iter().enumerate().map(|(s, &y)| {
                let member = members.get(s).copied().unwrap_or(false);
                let color = if member { INK } else { AXIS };
                Circle::new((x, y), if member { 5 } else { 4 }, color.filled())
            }))?;
        }
        Ok(())
    })
}

/// One quasi-identifier: steps taken of steps available, step label, and
/// values suppressed.
#[derive(Debug, Clone)]
pub struct Generalisation {
    pub column: String,
    pub level: usize,
    pub levels: usize,
    pub level_name: String,
    pub values_suppressed: u64,
}

/// Hierarchies have a handful of levels; more would not fit a row.
const MAX_STEPS: usize = 12;

/// Two panels with rows aligned: the generalisation steps taken per
/// quasi-identifier, and the values it lost.
pub fn generalisation(title: &str, rows: &[Generalisation]) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    let n = rows.len();
    let steps_of = |r: &Generalisation| r.levels.saturating_sub(1).min(MAX_STEPS);
    let steps_max = rows.iter().map(steps_of).max().unwrap_or(0).max(1);
    let label_w = label_area(rows.iter().map(|r| clip(&r.column, 32)), 12.5, 260);
    let name_w = label_area(rows.iter().map(|r| clip(&r.level_name, 28)), 12.0, 220);
    let left_w = label_w + (steps_max as u32 * 34) + name_w + 16;
    let left_w = left_w.min(WIDTH / 2 + 60);
    let (x_max, ticks) =
        nice_ticks(rows.iter().map(|r| r.values_suppressed).max().unwrap_or(0) as f64);
    let note_w = label_area(
        rows.iter().map(|r| tick(r.values_suppressed as f64)),
        12.0,
        120,
    );
    let height = 30 + n as u32 * ROW + 30;
    svg((WIDTH, height), title, |root| {
        let (left, right) = root.split_horizontally(left_w);
        let ys = row_centres(n);
        let mut steps = ChartBuilder::on(&left)
            .caption("Generalisation steps taken", font(13.0, &INK))
            .margin_right(name_w + 8)
            .margin_left(4)
            .x_label_area_size(30)
            .y_label_area_size(label_w)
            .build_cartesian_2d(
                axis(0.0..steps_max as f64, vec![]),
                axis(0.0..n as f64, ys.clone()),
            )?;
        let y_fmt = |y: &f64| row_at(n, *y).map_or(String::new(), |i| clip(&rows[i].column, 32));
        steps
            .configure_mesh()
            .disable_mesh()
            .axis_style(TRANSPARENT)
            .set_all_tick_mark_size(5)
            .y_label_style(font(12.5, &INK))
            .y_label_formatter(&y_fmt)
            .draw()?;
        for (row, &y) in rows.iter().zip(&ys) {
            let available = steps_of(row);
            let cells = (0..available).map(|s| {
                let taken = s < row.level;
                let suppressing = taken && s + 1 == available;
                let color = match (taken, suppressing) {
                    (true, true) => AMBER,
                    (true, false) => BLUE,
                    _ => TRACK,
                };
                let mut cell = Rectangle::new(
                    [(s as f64, y - 0.3), (s as f64 + 1.0, y + 0.3)],
                    color.filled(),
                );
                cell.set_margin(0, 0, 2, 2);
                cell
            });
            steps.draw_series(cells)?;
            let name = EmptyElement::at((available as f64, y))
                + Text::new(
                    clip(&row.level_name, 28),
                    (8, 0),
                    font(12.0, &MUTED).pos(Pos::new(HPos::Left, VPos::Center)),
                );
            steps.draw_series(std::iter::once(name))?;
        }

        let mut lost = ChartBuilder::on(&right)
            .caption("Values suppressed", font(13.0, &INK))
            .margin_right(note_w + 6)
            .margin_left(16)
            .x_label_area_size(30)
            .y_label_area_size(0)
            .build_cartesian_2d(axis(0.0..x_max, ticks), axis(0.0..n as f64, ys.clone()))?;
        let x_fmt = |x: &f64| tick(*x);
        lost.configure_mesh()
            .disable_y_mesh()
            .bold_line_style(GRID)
            .axis_style(TRANSPARENT)
            .set_tick_mark_size(LabelAreaPosition::Bottom, 3)
            .x_label_style(font(11.5, &MUTED))
            .x_label_formatter(&x_fmt)
            .draw()?;
        baseline(&mut lost, n)?;
        lost.draw_series(rows.iter().zip(&ys).map(|(r, &y)| {
            Rectangle::new(
                [(0.0, y - 0.3), (r.values_suppressed as f64, y + 0.3)],
                TEAL.filled(),
            )
        }))?;
        lost.draw_series(rows.iter().zip(&ys).map(|(r, &y)| {
            EmptyElement::at((r.values_suppressed as f64, y))
                + Text::new(
                    tick(r.values_suppressed as f64),
                    (8, 0),
                    font(12.0, &INK).pos(Pos::new(HPos::Left, VPos::Center)),
                )
        }))?;
        Ok(())
    })
}
