//! The metrics sink: takes every interval report into the run's metrics (see
//! [`super::metrics`]) with tracer's own cost at that moment, and serves them at the
//! `--listen` address (see [`super::serve`]).
use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
};

use anyhow::Result;

use super::{
    Sink,
    metrics::{Metrics, Options},
    own::OwnMeter,
    serve,
};
use crate::{
    cli::Cli,
    model::{Report, ReportKind},
};

pub struct MetricsSink {
    state: Arc<Mutex<Metrics>>,
    meter: OwnMeter,
    /// Bound at start, served once the run begins.
    listener: Option<TcpListener>,
}

impl MetricsSink {
    /// Binds the address now (a bad one costs nothing).
    pub fn open(cli: &Cli, addr: std::net::SocketAddr) -> Result<Self> {
        let listener = serve::bind(addr)?;
        Ok(MetricsSink {
            state: Arc::new(Mutex::new(Metrics::new(Options::from(cli)))),
            meter: OwnMeter::new(cli.bpf_stats)?,
            listener: Some(listener),
        })
    }
}

impl Sink for MetricsSink {
    fn wants_intervals(&self) -> bool {
        true
    }

    /// Every window once, the last partial one too: the counters are their sums.
    fn wants_aligned_intervals(&self) -> bool {
        true
    }

    fn start(&mut self) -> Result<()> {
        self.meter.take_inventory();
        if let Ok(mut m) = self.state.lock() {
            m.set_own(self.meter.measure());
        }
        match self.listener.take() {
            Some(l) => serve::spawn(l, self.state.clone()),
            None => Ok(()),
        }
    }

    fn write(&mut self, report: &Report) -> Result<()> {
        if report.kind != ReportKind::Interval {
            return Ok(());
        }
        let own = self.meter.measure();
        if let Ok(mut m) = self.state.lock() {
            m.add(report);
            m.set_own(own);
        }
        Ok(())
    }
}
