//! The page engine: a cursor that places wrapped rows and headings and
//! starts a new page (with a continuation header) when the current one is full.

use super::text::{width, wrap};

pub const PAGE_W: f32 = 595.0;
pub const PAGE_H: f32 = 842.0;
pub const LEFT: f32 = 50.0;
pub const RIGHT: f32 = PAGE_W - 50.0;
pub const TOP: f32 = PAGE_H - 50.0;
pub const BOTTOM: f32 = 62.0;
pub const LABEL_W: f32 = 150.0;
pub const VALUE_X: f32 = LEFT + LABEL_W;
pub const VALUE_W: f32 = RIGHT - VALUE_X;
pub const SIZE: f32 = 9.5;
pub const LINE: f32 = 12.5;

pub const BLACK: (f32, f32, f32) = (0.0, 0.0, 0.0);
pub const GREY: (f32, f32, f32) = (0.35, 0.35, 0.35);
pub const RULE: (f32, f32, f32) = (0.7, 0.7, 0.7);
pub const WHITE: (f32, f32, f32) = (1.0, 1.0, 1.0);

/// The three text styles (index of their primary face in `fonts::faces`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    Regular = 0,
    Bold = 1,
    Mono = 2,
}

/// One drawing operation in PDF user space (origin bottom left).
#[derive(Debug, Clone)]
pub enum Op {
    Text {
        x: f32,
        y: f32,
        font: Font,
        size: f32,
        colour: (f32, f32, f32),
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        colour: (f32, f32, f32),
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
        colour: (f32, f32, f32),
    },
}

/// Pages under construction; `y` is the baseline cursor on the last page.
pub struct Layout {
    pages: Vec<Vec<Op>>,
    pub y: f32,
    id: String,
    title: String,
    short: &'static str,
}

impl Layout {
    /// `title` heads continuation pages; `short` ("certificate" or
    /// "report") names the document in the footer.
    pub fn new(id: &str, title: &str, short: &'static str) -> Self {
        Layout {
            pages: vec![Vec::new()],
            y: TOP,
            id: id.to_owned(),
            title: title.to_owned(),
            short,
        }
    }

    pub fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    pub fn text_at(
        &mut self,
        x: f32,
        y: f32,
        font: Font,
        size: f32,
        colour: (f32, f32, f32),
        text: String,
    ) {
        self.ops().push(Op::Text {
            x,
            y,
            font,
            size,
            colour,
            text,
        });
    }

    pub fn rule(&mut self, y: f32) {
        self.ops().push(Op::Line {
            x1: LEFT,
            y1: y,
            x2: RIGHT,
            y2: y,
            width: 0.5,
            colour: RULE,
        });
    }

    /// Start a new page when less than `h` points remain.
    pub fn ensure(&mut self, h: f32) {
        if self.y - h >= BOTTOM {
            return;
        }
        self.pages.push(Vec::new());
        self.y = TOP;
        let head = format!("{} \u{2014} {} (continued)", self.title, self.id);
        self.text_at(LEFT, self.y, Font::Bold, 10.0, GREY, head);
        self.rule(self.y - 5.0);
        self.y -= 24.0;
    }

    pub fn heading(&mut self, title: &str) {
        // Keep the heading with at least two rows.
        self.ensure(22.0 + 2.0 * LINE);
        self.y -= 8.0;
        self.text_at(LEFT, self.y, Font::Bold, 12.0, BLACK, title.to_owned());
        self.rule(self.y - 4.0);
        self.y -= 18.0;
    }

    pub fn row_with(&mut self, label: &str, value: &str, font: Font, size: f32) {
        let lines = wrap(value, font, size, VALUE_W);
        let label_lines = wrap(label, Font::Bold, 8.5, LABEL_W - 8.0);
        let n = lines.len().max(label_lines.len());
        // Short rows stay together; long ones may split across pages.
        self.ensure(if n <= 6 { n as f32 * LINE } else { LINE });
        for i in 0..n {
            if i > 0 {
                self.ensure(LINE);
            }
            if let Some(l) = label_lines.get(i) {
                self.text_at(LEFT, self.y, Font::Bold, 8.5, GREY, l.clone());
            }
            if let Some(v) = lines.get(i) {
                self.text_at(VALUE_X, self.y, font, size, BLACK, v.clone());
            }
            self.y -= LINE;
        }
    }

    pub fn row(&mut self, label: &str, value: &str) {
        self.row_with(label, value, Font::Regular, SIZE);
    }

    pub fn mono_row(&mut self, label: &str, value: &str) {
        self.row_with(label, value, Font::Mono, 8.5);
    }

    pub fn paragraph(&mut self, text: &str, font: Font, size: f32) {
        for line in wrap(text, font, size, RIGHT - LEFT) {
            self.ensure(LINE);
            self.text_at(LEFT, self.y, font, size, BLACK, line);
            self.y -= LINE;
        }
    }

    /// Add "page N of M" footers and return the pages.
    pub fn finish(mut self) -> Vec<Vec<Op>> {
        let total = self.pages.len();
        let left = format!("Lethe {} {}", self.short, self.id);
        for (i, page) in self.pages.iter_mut().enumerate() {
            let right = format!("page {} of {total}", i + 1);
            let rx = RIGHT - width(Font::Regular, &right, 8.0);
            page.push(Op::Line {
                x1: LEFT,
                y1: 44.0,
                x2: RIGHT,
                y2: 44.0,
                width: 0.5,
                colour: RULE,
            });
            page.push(Op::Text {
                x: LEFT,
                y: 32.0,
                font: Font::Regular,
                size: 8.0,
                colour: GREY,
                text: left.clone(),
            });
            page.push(Op::Text {
                x: rx,
                y: 32.0,
                font: Font::Regular,
                size: 8.0,
                colour: GREY,
                text: right,
            });
        }
        self.pages
    }
}
