//! Stage: ESA `mail_logs` text to ICID and MID lifecycles.
