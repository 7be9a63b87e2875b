//! Charts drawn on the server as SVG inside the page: no script, no request, and
//! readable in print. Each chart has a text alternative (its title and a summary),
//! and its page shows the same numbers as a table. Time runs left to right in both
//! languages, as the organisation's printed charts do.

use std::fmt::Write;

use super::page::{number, t};
use crate::display::{Lang, escape};

/// One point of a series.
#[derive(Debug, Clone)]
pub struct Point {
    /// The period's label, as the reader says it.
    pub label: String,
    pub value: Option<f64>,
    /// Whether this point is an official (released) figure.
    pub official: bool,
}

/// A small trend line for a card (`aria-label` says what it shows).
pub fn sparkline(points: &[Point], label: &str) -> String {
    let values: Vec<(usize, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.value.map(|v| (i, v)))
        .collect();
    if values.len() < 2 {
        return String::new();
    }
    let (w, h, pad) = (200.0, 42.0, 4.0);
    let (lo, hi) = bounds(values.iter().map(|(_, v)| *v));
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (points.len() - 1).max(1) as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * (v - lo) / (hi - lo);
    let path: Vec<String> = values
        .iter()
        .map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v)))
        .collect();
    let (li, lv) = values[values.len() - 1];
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\">\
         <polyline points=\"{}\" fill=\"none\" stroke=\"#0b4f6c\" stroke-width=\"2\" vector-effect=\"non-scaling-stroke\"/>\
         <circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#c8a24a\"/></svg>",
        escape(label),
        path.join(" "),
        x(li),
        y(lv)
    )
}

/// Low and high ends of an axis holding `values`, a little apart when all are equal.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
        return (lo - d, hi + d);
    }
    (lo, hi)
}

/// A "nice" step for about `ticks` intervals over `span`.
fn step(span: f64, ticks: f64) -> f64 {
    let raw = span / ticks;
    let power = 10f64.powf(raw.log10().floor());
    let m = raw / power;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// A line chart of a time series with a value axis, the norm's target as a dashed
/// line, and official points marked; `title` and `summary` are its text alternative.
pub fn line(
    points: &[Point],
    target: Option<f64>,
    decimals: usize,
    title: &str,
    summary: &str,
    lang: Lang,
) -> String {
    let known: Vec<f64> = points.iter().filter_map(|p| p.value).collect();
    if known.is_empty() {
        return String::new();
    }
    let (w, h) = (760.0, 300.0);
    let (left, right, top, bottom) = (78.0, 16.0, 14.0, 46.0);
    let (lo, hi) = bounds(known.iter().copied().chain(target));
    let s = step(hi - lo, 5.0);
    let lo = (lo / s).floor() * s;
    let hi = (hi / s).ceil() * s;
    let n = points.len();
    let x = |i: usize| {
        if n == 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + (h - top - bottom) * (hi - v) / (hi - lo);
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"chart-title chart-desc\" direction=\"ltr\">\
         <title id=\"chart-title\">{}</title><desc id=\"chart-desc\">{}</desc>",
        escape(title),
        escape(summary)
    );
    let mut v = lo;
    let mut guard = 0;
    while v <= hi + s / 2.0 && guard < 20 {
        let yy = y(v);
        let label = compact(v, s, decimals, lang);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 8.0,
            yy + 4.0,
            escape(&label)
        );
        v += s;
        guard += 1;
    }
    // Period labels: at most about six, always the last, none crowding it.
    let every = n.div_ceil(6).max(1);
    for (i, p) in points.iter().enumerate() {
        if (i % every == 0 && n - 1 - i >= every) || i == n - 1 {
            // The ends' labels stay inside the chart.
            let anchor = match i {
                _ if n == 1 => "middle",
                0 => "start",
                i if i == n - 1 => "end",
                _ => "middle",
            };
            let _ = write!(
                out,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                x(i),
                h - bottom + 20.0,
                escape(&strip_tags(&p.label))
            );
        }
    }
    if let Some(target) = target
        && target >= lo
        && target <= hi
    {
        let yy = y(target);
        let _ = write!(
            out,
            "<line class=\"target\" x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>",
            w - right
        );
    }
    // The line breaks where a value is missing.
    let mut segment: Vec<String> = vec![];
    let mut segments = vec![];
    for (i, p) in points.iter().enumerate() {
        match p.value {
            Some(v) => segment.push(format!("{:.1},{:.1}", x(i), y(v))),
            None if !segment.is_empty() => segments.push(std::mem::take(&mut segment)),
            None => {}
        }
    }
    if !segment.is_empty() {
        segments.push(segment);
    }
    for seg in segments {
        let _ = write!(
            out,
            "<polyline class=\"line\" points=\"{}\"/>",
            seg.join(" ")
        );
    }
    for (i, p) in points.iter().enumerate() {
        if let Some(v) = p.value {
            let class = if p.official { "dot official" } else { "dot" };
            let r = if p.official { 5.0 } else { 3.5 };
            let _ = write!(
                out,
                "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\"><title>{}: {}</title></circle>",
                x(i),
                y(v),
                escape(&strip_tags(&p.label)),
                escape(&strip_tags(&number(v, decimals, lang)))
            );
        }
    }
    out.push_str("</svg>");
    let _ = write!(
        out,
        "<ul class=\"legend\">{}{}</ul>",
        if points.iter().any(|p| p.official) {
            format!(
                "<li>{}</li>",
                t(
                    lang,
                    "● نقطه‌ی طلایی: رقم رسمی منتشرشده",
                    "● Gold point: an official released figure"
                )
            )
        } else {
            String::new()
        },
        if target.is_some() {
            format!(
                "<li>{}</li>",
                t(
                    lang,
                    "- - - خط‌چین سبز: هدف",
                    "- - - Green dashes: the target"
                )
            )
        } else {
            String::new()
        }
    );
    out
}

/// An axis label: large values in thousands, millions or billions, so that a label
/// stays short (the table under the chart has the exact figures).
fn compact(v: f64, step: f64, decimals: usize, lang: Lang) -> String {
    let scales: [(f64, &str, &str); 3] = [
        (1e9, "میلیارد", "bn"),
        (1e6, "میلیون", "m"),
        (1e3, "هزار", "k"),
    ];
    for (scale, fa, en) in scales {
        if v.abs() >= scale && step >= scale / 10.0 {
            let n = strip_tags(&number(v / scale, 1, lang));
            return match lang {
                Lang::Fa => format!("{n} {fa}"),
                Lang::En => format!("{n}{en}"),
            };
        }
    }
    strip_tags(&number(
        v,
        decimals.max(if step < 1.0 { 1 } else { 0 }),
        lang,
    ))
}

/// Text without the `<bdi>` wrappers that numbers carry in HTML (SVG text and
/// titles take plain text).
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[Option<f64>]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                label: format!("p{i}"),
                value: *v,
                official: i == 1,
            })
            .collect()
    }

    #[test]
    fn a_chart_has_its_text_alternative_and_a_point_per_value() {
        let svg = line(
            &series(&[Some(1.0), Some(3.0), None, Some(2.0)]),
            Some(2.5),
            1,
            "Title <x>",
            "Summary",
            Lang::En,
        );
        assert!(svg.contains("<title id=\"chart-title\">Title &lt;x&gt;</title>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("dot official").count(), 1);
        // The missing value breaks the line in two.
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("class=\"target\""));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn axis_labels_stay_short() {
        assert_eq!(compact(140_000_000_000.0, 20e9, 0, Lang::En), "140bn");
        assert_eq!(compact(112_500_000.0, 500_000.0, 0, Lang::En), "112.5m");
        assert_eq!(compact(625.0, 25.0, 1, Lang::En), "625");
        assert_eq!(compact(92.5, 0.5, 1, Lang::En), "92.5");
        assert_eq!(compact(3_000_000_000.0, 1e9, 0, Lang::Fa), "۳ میلیارد");
    }

    #[test]
    fn flat_and_empty_series_draw_without_dividing_by_zero() {
        let flat = line(
            &series(&[Some(5.0), Some(5.0)]),
            None,
            0,
            "t",
            "s",
            Lang::Fa,
        );
        assert!(!flat.contains("NaN") && !flat.contains("inf"));
        assert!(line(&series(&[None]), None, 0, "t", "s", Lang::En).is_empty());
        assert!(sparkline(&series(&[Some(1.0)]), "x").is_empty());
        let spark = sparkline(&series(&[Some(1.0), Some(1.0), Some(2.0)]), "x");
        assert!(spark.contains("<polyline") && !spark.contains("NaN"));
    }
}
