//! The console's pictures, drawn on the server as inline SVG: storage by
//! repository (horizontal bars), image sizes over push time (points), and
//! findings by severity (bars in the severity colours). No script, no
//! external resource; every label is escaped and every picture carries a
//! `<title>` and `role="img"` for screen readers.

use super::format;

/// Escapes text for an SVG (XML) text node or attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One bar: its label, its value, the text shown for the value, a link
/// and a fill colour.
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub shown: String,
    pub href: Option<String>,
    pub fill: &'static str,
}

/// Horizontal bars, longest first as given, scaled to the largest value.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    const ROW: u32 = 22;
    const LABEL: u32 = 180;
    const WIDTH: u32 = 560;
    let plot = WIDTH - LABEL - 90;
    let height = ROW * bars.len().max(1) as u32 + 8;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet"><title>{}</title>"#,
        escape(title)
    );
    if bars.is_empty() {
        svg.push_str(r#"<text x="4" y="18" class="axis">nothing to draw</text>"#);
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = 4 + ROW * i as u32;
        let length = ((bar.value as f64 / max as f64) * f64::from(plot)).round() as u32;
        let label = escape(&truncate(&bar.label, 26));
        let row = format!(
            r#"<g><title>{full}: {shown}</title><text x="{lx}" y="{ty}" text-anchor="end" class="label">{label}</text><rect x="{LABEL}" y="{ry}" width="{w}" height="{h}" fill="{fill}"></rect><text x="{vx}" y="{ty}" class="value">{shown}</text></g>"#,
            full = escape(&bar.label),
            shown = escape(&bar.shown),
            lx = LABEL - 6,
            ty = y + 14,
            ry = y + 2,
            w = length.max(1),
            h = ROW - 6,
            fill = bar.fill,
            vx = LABEL + length.max(1) + 6,
        );
        match &bar.href {
            Some(href) => svg.push_str(&format!(r#"<a href="{}">{row}</a>"#, escape(href))),
            None => svg.push_str(&row),
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Points of (push time, size), time along x and size up y, with the
/// first and last time and the largest size written on the axes.
pub fn sizes_over_time(title: &str, points: &[(i64, u64)]) -> String {
    const WIDTH: f64 = 560.0;
    const HEIGHT: f64 = 200.0;
    const LEFT: f64 = 70.0;
    const BOTTOM: f64 = 24.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMinYMin meet"><title>{}</title>"#,
        escape(title)
    );
    let plot_w = WIDTH - LEFT - 10.0;
    let plot_h = HEIGHT - BOTTOM - 10.0;
    svg.push_str(&format!(
        r#"<line x1="{LEFT}" y1="10" x2="{LEFT}" y2="{b}" class="axisline"></line><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" class="axisline"></line>"#,
        b = 10.0 + plot_h,
        r = LEFT + plot_w
    ));
    if points.is_empty() {
        svg.push_str(r#"<text x="80" y="40" class="axis">no images</text></svg>"#);
        return svg;
    }
    let first = points.iter().map(|p| p.0).min().unwrap_or(0);
    let last = points.iter().map(|p| p.0).max().unwrap_or(0);
    let largest = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let span = (last - first).max(1) as f64;
    for (at, size) in points {
        let x = if last == first {
            LEFT + plot_w / 2.0
        } else {
            LEFT + (*at - first) as f64 / span * plot_w
        };
        let y = 10.0 + plot_h - (*size as f64 / largest as f64) * plot_h;
        svg.push_str(&format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" class="point"><title>{} at {}</title></circle>"#,
            escape(&format::bytes(*size)),
            escape(&format::time_ms(*at))
        ));
    }
    svg.push_str(&format!(
        r#"<text x="{lx}" y="16" text-anchor="end" class="axis">{max}</text><text x="{lx}" y="{by}" text-anchor="end" class="axis">0</text><text x="{LEFT}" y="{ty}" class="axis">{from}</text><text x="{rx}" y="{ty}" text-anchor="end" class="axis">{to}</text></svg>"#,
        lx = LEFT - 4.0,
        max = escape(&format::bytes(largest)),
        by = 10.0 + plot_h,
        ty = HEIGHT - 6.0,
        rx = LEFT + plot_w,
        from = escape(&format::time_ms(first)),
        to = escape(&format::time_ms(last)),
    ));
    svg
}

/// The fill for a severity: dark enough that white text on it passes
/// WCAG AA contrast (badges use the same colours).
pub fn severity_fill(severity: &str) -> &'static str {
    match severity {
        "CRITICAL" => "#8b0000",
        "HIGH" => "#b23c00",
        "MEDIUM" => "#7a5c00",
        "LOW" => "#2f5f8a",
        "INFORMATIONAL" => "#4d4d4d",
        _ => "#555555",
    }
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        let kept: String = text.chars().take(chars - 1).collect();
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scaled() {
        let svg = bars(
            "storage",
            &[
                Bar {
                    label: "<a&b>".into(),
                    value: 10,
                    shown: "10 B".into(),
                    href: Some("/x?a=1&b=2".into()),
                    fill: "#000",
                },
                Bar {
                    label: "small".into(),
                    value: 5,
                    shown: "5 B".into(),
                    href: None,
                    fill: "#000",
                },
            ],
        );
        assert!(svg.contains("&lt;a&amp;b&gt;"));
        assert!(svg.contains(r#"href="/x?a=1&amp;b=2""#));
        assert!(svg.contains(r#"width="290""#), "{svg}");
        assert!(svg.contains(r#"width="145""#), "{svg}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn points_fill_the_plot() {
        let svg = sizes_over_time("sizes", &[(0, 10), (1000, 20)]);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(
            svg.contains(r#"cx="70.0""#) && svg.contains(r#"cx="550.0""#),
            "{svg}"
        );
        assert!(sizes_over_time("none", &[]).contains("no images"));
    }
}
