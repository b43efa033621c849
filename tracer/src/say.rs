//! Messages for the person running tracer ("tracer: tracing ...", warnings during the run):
//! to standard error, or, while a live view holds the terminal (`--tui`), into the view,
//! which would otherwise be written over.
use std::sync::Mutex;

type Route = Box<dyn Fn(String) + Send>;

static ROUTE: Mutex<Option<Route>> = Mutex::new(None);

/// Says one line: where the view takes it, else on standard error.
pub fn line(msg: String) {
    let route = ROUTE.lock().unwrap_or_else(|e| e.into_inner());
    match route.as_ref() {
        Some(to) => to(msg),
        None => eprintln!("{msg}"),
    }
}

/// Sends the lines to `to` from now on (None: to standard error again).
pub fn route(to: Option<Route>) {
    *ROUTE.lock().unwrap_or_else(|e| e.into_inner()) = to;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn lines_go_where_they_are_routed() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let to = got.clone();
        route(Some(Box::new(move |m| to.lock().unwrap().push(m))));
        line("tracer: one".into());
        route(None);
        line("tracer: to stderr".into());
        assert_eq!(*got.lock().unwrap(), vec!["tracer: one".to_string()]);
    }
}
