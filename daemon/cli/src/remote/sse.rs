//! Reading a server-sent event stream (the WHATWG `text/event-stream`
//! format) line by line: what `GET /api/v1/jobs/{job}/events` sends.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`message` when none was given).
    pub name: String,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// Collects fields until a blank line dispatches them.
#[derive(Debug, Default)]
pub struct SseParser {
    name: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Feed one line (without its line ending). A blank line ends an event;
    /// comments (`:` first) and unknown fields are ignored, as the format
    /// says.
    pub fn line(&mut self, line: &str) -> Option<SseEvent> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            let name = self.name.take();
            if self.data.is_empty() {
                return None;
            }
            let data = std::mem::take(&mut self.data).join("\n");
            return Some(SseEvent {
                name: name.unwrap_or_else(|| "message".into()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.name = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        text.split('\n').filter_map(|l| p.line(l)).collect()
    }

    #[test]
    fn events_are_dispatched_on_blank_lines_with_their_names() {
        let got =
            all(": keep-alive\n\nevent: progress\ndata: {\"a\":1}\n\nevent:end\ndata:{}\r\n\r\n");
        assert_eq!(
            got,
            vec![
                SseEvent {
                    name: "progress".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    name: "end".into(),
                    data: "{}".into()
                },
            ]
        );
    }

    #[test]
    fn multi_line_data_is_joined_and_unnamed_events_are_messages() {
        let got = all("data: one\ndata: two\nid: 7\n\n");
        assert_eq!(
            got,
            vec![SseEvent {
                name: "message".into(),
                data: "one\ntwo".into()
            }]
        );
    }

    #[test]
    fn an_event_without_data_or_cut_off_is_not_dispatched() {
        assert!(all("event: end\n\n").is_empty());
        assert!(all("event: end\ndata: {}").is_empty());
    }
}
