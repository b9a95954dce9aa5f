//! Markdown tables and SVG plots of the simulator's results.

use plotters::prelude::*;
use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;

/// A markdown table, its columns padded so that it reads in a terminal too.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: ToString>(header: impl IntoIterator<Item = S>) -> Table {
        Table { header: header.into_iter().map(|s| s.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(|s| s.to_string()).collect());
    }

    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                let cells = self.rows.iter().filter_map(|r| r.get(i)).chain([&self.header[i]]);
                cells.map(|c| c.chars().count()).max().unwrap_or(3).max(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                let pad = w - c.chars().count();
                // Text left, numbers right.
                if i == 0 {
                    let _ = write!(s, " {c}{} |", " ".repeat(pad));
                } else {
                    let _ = write!(s, " {}{c} |", " ".repeat(pad));
                }
            }
            s.push('\n');
            s
        };
        let mut out = line(&self.header);
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            let dashes = "-".repeat(*w);
            out.push_str(&if i == 0 { format!(" {dashes} |") } else { format!(" {}: |", &dashes[1..]) });
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// One named series of points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A panel of a figure: a title, axis names, and whether each axis is logarithmic.
pub struct Panel {
    pub title: String,
    pub x: (&'static str, bool),
    pub y: (&'static str, bool),
    pub series: Vec<Series>,
    /// Lines between a series' points, or labelled points only.
    pub lines: bool,
}

/// Strong, distinguishable colours (matplotlib's tab10, then two more).
const COLORS: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(0, 0, 128),
];

/// An axis label: at most three significant digits, no trailing zeros.
fn compact(v: f64) -> String {
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(0.05);
    (lo - pad)..(hi + pad)
}

/// Draws `panels` side by side (in rows of `per_row`) into the SVG file `path`.
pub fn figure(path: &Path, per_row: usize, panels: &[Panel]) -> Result<(), Box<dyn Error>> {
    let rows = panels.len().div_ceil(per_row);
    let (w, h) = (520 * per_row as u32, 400 * rows as u32);
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((rows, per_row));
    for (panel, area) in panels.iter().zip(&areas) {
        draw_panel(panel, area)?;
    }
    root.present()?;
    Ok(())
}

/// A logarithmic axis is drawn as a linear axis over log10 of the values, labelled with the
/// values themselves: evenly spaced labels whatever the range.
fn to_axis(v: f64, log: bool) -> f64 {
    if log { v.max(1e-3).log10() } else { v }
}

fn from_axis(v: f64, log: bool) -> f64 {
    if log { 10f64.powf(v) } else { v }
}

fn draw_panel(p: &Panel, area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<(), Box<dyn Error>> {
    let ((xname, xlog), (yname, ylog)) = (p.x, p.y);
    let pt = |(x, y): (f64, f64)| (to_axis(x, xlog), to_axis(y, ylog));
    let xs = range(p.series.iter().flat_map(|s| s.points.iter().map(|&q| pt(q).0)));
    let ys = range(p.series.iter().flat_map(|s| s.points.iter().map(|&q| pt(q).1)));
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xs, ys)?;
    let (xl, yl) = (|v: &f64| compact(from_axis(*v, xlog)), |v: &f64| compact(from_axis(*v, ylog)));
    chart
        .configure_mesh()
        .x_desc(xname)
        .y_desc(yname)
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&xl)
        .y_label_formatter(&yl)
        .light_line_style(WHITE)
        .draw()?;
    for (i, s) in p.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()].to_rgba();
        let points: Vec<(f64, f64)> = s.points.iter().map(|&q| pt(q)).collect();
        if p.lines {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|&q| Circle::new(q, 3, color.filled())))?;
        } else {
            let name = s.name.clone();
            chart.draw_series(points.iter().map(|&q| {
                EmptyElement::at(q)
                    + Circle::new((0, 0), 4, color.filled())
                    + Text::new(name.clone(), (6, -6), ("sans-serif", 11).into_font().color(&color))
            }))?;
        }
    }
    if p.lines {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}
