//! The descriptor set served by reflection carries a comment on every
//! service, method, message, field, enum and enum value, so `grpcurl
//! describe` explains the API by itself.

#![expect(
    unused_crate_dependencies,
    reason = "a test target sees every dependency of the library"
)]

use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

// Field numbers in descriptor.proto, which source-info paths are made of.
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED: i32 = 3;
const MESSAGE_ENUM: i32 = 4;
const SERVICE_METHOD: i32 = 2;
const ENUM_VALUE: i32 = 2;

/// (path, fully qualified name) of every element that needs a comment.
fn elements(set: &FileDescriptorSet) -> Vec<(String, Vec<i32>, String)> {
    fn message(
        file: &str,
        path: Vec<i32>,
        name: &str,
        m: &DescriptorProto,
        out: &mut Vec<(String, Vec<i32>, String)>,
    ) {
        out.push((file.to_owned(), path.clone(), name.to_owned()));
        for (i, f) in m.field.iter().enumerate() {
            out.push((
                file.to_owned(),
                [&path[..], &[MESSAGE_FIELD, i as i32]].concat(),
                format!("{name}.{}", f.name()),
            ));
        }
        for (i, n) in m.nested_type.iter().enumerate() {
            message(
                file,
                [&path[..], &[MESSAGE_NESTED, i as i32]].concat(),
                &format!("{name}.{}", n.name()),
                n,
                out,
            );
        }
        for (i, e) in m.enum_type.iter().enumerate() {
            enumeration(
                file,
                [&path[..], &[MESSAGE_ENUM, i as i32]].concat(),
                &format!("{name}.{}", e.name()),
                e,
                out,
            );
        }
    }
    fn enumeration(
        file: &str,
        path: Vec<i32>,
        name: &str,
        e: &EnumDescriptorProto,
        out: &mut Vec<(String, Vec<i32>, String)>,
    ) {
        out.push((file.to_owned(), path.clone(), name.to_owned()));
        for (i, v) in e.value.iter().enumerate() {
            out.push((
                file.to_owned(),
                [&path[..], &[ENUM_VALUE, i as i32]].concat(),
                format!("{name}.{}", v.name()),
            ));
        }
    }
    let mut out = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package().starts_with("latchkey."))
    {
        let pkg = file.package();
        let f = file.name();
        for (i, m) in file.message_type.iter().enumerate() {
            message(
                f,
                vec![FILE_MESSAGE, i as i32],
                &format!("{pkg}.{}", m.name()),
                m,
                &mut out,
            );
        }
        for (i, e) in file.enum_type.iter().enumerate() {
            enumeration(
                f,
                vec![FILE_ENUM, i as i32],
                &format!("{pkg}.{}", e.name()),
                e,
                &mut out,
            );
        }
        for (i, s) in file.service.iter().enumerate() {
            let name = format!("{pkg}.{}", s.name());
            out.push((f.to_owned(), vec![FILE_SERVICE, i as i32], name.clone()));
            for (j, m) in s.method.iter().enumerate() {
                out.push((
                    f.to_owned(),
                    vec![FILE_SERVICE, i as i32, SERVICE_METHOD, j as i32],
                    format!("{name}.{}", m.name()),
                ));
            }
        }
    }
    out
}

#[test]
fn every_service_method_message_field_and_enum_value_has_a_comment() {
    let set = FileDescriptorSet::decode(latchkey_proto::FILE_DESCRIPTOR_SET).unwrap();
    let all = elements(&set);
    assert!(all.len() > 200, "walked only {} elements", all.len());

    let missing: Vec<&str> = all
        .iter()
        .filter(|(file, path, _)| {
            let info = set
                .file
                .iter()
                .find(|f| f.name() == file)
                .and_then(|f| f.source_code_info.as_ref())
                .expect("the descriptor set keeps source info, which describe shows");
            !info
                .location
                .iter()
                .any(|l| &l.path == path && !l.leading_comments().trim().is_empty())
        })
        .map(|(_, _, name)| name.as_str())
        .collect();

    assert!(missing.is_empty(), "no comment on: {missing:?}");
}
