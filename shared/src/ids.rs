//! Identifier derivation.
//!
//! Agent ids are derived, not allocated: `uuid_v5(org_id, name)`. Every
//! gateway replica and writer computes the same id for the same name without
//! coordination, and names are unique per organization by construction.

use uuid::Uuid;

/// The id of the agent called `name` in organization `org_id`.
pub fn agent_id(org_id: Uuid, name: &str) -> Uuid {
    Uuid::new_v5(&org_id, name.as_bytes())
}

/// An OTLP 16-byte trace id as the UUID of the same bytes.
pub fn trace_id_from_otlp(bytes: &[u8]) -> Option<Uuid> {
    let arr: [u8; 16] = bytes.try_into().ok()?;
    if arr == [0; 16] {
        return None;
    }
    Some(Uuid::from_bytes(arr))
}

/// An OTLP 8-byte span id as `00000000-0000-0000-XXXX-XXXXXXXXXXXX`.
pub fn span_id_from_otlp(bytes: &[u8]) -> Option<Uuid> {
    let arr: [u8; 8] = bytes.try_into().ok()?;
    if arr == [0; 8] {
        return None;
    }
    let mut full = [0u8; 16];
    full[8..].copy_from_slice(&arr);
    Some(Uuid::from_bytes(full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_are_stable_and_scoped() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(agent_id(a, "x"), agent_id(a, "x"));
        assert_ne!(agent_id(a, "x"), agent_id(b, "x"));
        assert_ne!(agent_id(a, "x"), agent_id(a, "y"));
    }

    #[test]
    fn otlp_ids_map_to_uuids() {
        let t = hex::decode("5b8efff798038103d269b633813fc60c").unwrap();
        assert_eq!(
            trace_id_from_otlp(&t).unwrap().to_string(),
            "5b8efff7-9803-8103-d269-b633813fc60c"
        );
        let s = hex::decode("eee19b7ec3c1b174").unwrap();
        assert_eq!(
            span_id_from_otlp(&s).unwrap().to_string(),
            "00000000-0000-0000-eee1-9b7ec3c1b174"
        );
        assert_eq!(trace_id_from_otlp(&[0; 16]), None);
        assert_eq!(span_id_from_otlp(&[1, 2]), None);
    }
}
