//! The query API's router in process, without PostgreSQL, ClickHouse or
//! Redis: the requests here are answered before any of them is needed.
