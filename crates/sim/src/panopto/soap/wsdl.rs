//! The WSDL each simulated SOAP service serves at `?wsdl` and `?singleWsdl`: one document with
//! its schemas inline (so a client such as zeep needs nothing else), naming the operations
//! the simulator answers with the messages, port type, binding and `SOAPAction`s of Panopto's
//! (`I<Service>_<Op>_InputMessage`, `http://tempuri.org/I<Service>/<Op>`, document/literal,
//! SOAP 1.1). Types are declared in the namespace each data contract lives in (V40, V42.Soap,
//! V46.Soap, the serialization arrays), member by member in the order the simulator writes
//! them, every member optional and nillable as WCF declares them.

use std::collections::BTreeMap;
use std::fmt::Write;

use panopto::soap::{ARRAYS_NS, TEMPURI, V40, V42_SOAP, V46_SOAP};

const SER_NS: &str = "http://schemas.microsoft.com/2003/10/Serialization/";

/// A member's or parameter's type.
#[derive(Debug, Clone, Copy)]
enum T {
    Str,
    Guid,
    Bool,
    Int,
    Double,
    DateTime,
    /// `ArrayOfguid` / `ArrayOfstring`.
    Guids,
    Strings,
    /// A data contract by name (see [`CONTRACTS`]).
    C(&'static str),
}

struct Contract {
    name: &'static str,
    ns: &'static str,
    members: &'static [(&'static str, T)],
}

/// Enumerations: name, namespace, values.
const ENUMS: &[(&str, &str, &[&str])] = &[
    (
        "SessionState",
        V42_SOAP,
        &[
            "Created",
            "Scheduled",
            "Recording",
            "Broadcasting",
            "Processing",
            "Complete",
        ],
    ),
    (
        "RemoteRecorderState",
        V42_SOAP,
        &[
            "Stopped",
            "Previewing",
            "Recording",
            "Paused",
            "Faulted",
            "Disconnected",
            "Blocked",
        ],
    ),
    (
        "GroupType",
        V40,
        &["ActiveDirectory", "External", "Internal"],
    ),
    ("SystemRole", V40, &["None", "Videographer", "Admin"]),
    (
        "AccessRole",
        V40,
        &["Creator", "Viewer", "ViewerWithLink", "Publisher"],
    ),
];

const CONTRACTS: &[Contract] = &[
    Contract {
        name: "AuthenticationInfo",
        ns: V40,
        members: &[
            ("AuthCode", T::Str),
            ("Password", T::Str),
            ("UserKey", T::Str),
        ],
    },
    Contract {
        name: "Pagination",
        ns: V40,
        members: &[("MaxNumberResults", T::Int), ("PageNumber", T::Int)],
    },
    Contract {
        name: "ListSessionsRequest",
        ns: V40,
        members: &[
            ("EndDate", T::DateTime),
            ("FolderId", T::Guid),
            ("Pagination", T::C("Pagination")),
            ("RemoteRecorderId", T::Guid),
            ("SortBy", T::Str),
            ("SortIncreasing", T::Bool),
            ("StartDate", T::DateTime),
            ("States", T::C("ArrayOfSessionState")),
        ],
    },
    Contract {
        name: "Session",
        ns: V42_SOAP,
        members: &[
            ("CreatorId", T::Guid),
            ("Description", T::Str),
            ("Duration", T::Double),
            ("EditorUrl", T::Str),
            ("ExternalId", T::Str),
            ("FolderId", T::Guid),
            ("FolderName", T::Str),
            ("Id", T::Guid),
            ("IosVideoUrl", T::Str),
            ("IsBroadcast", T::Bool),
            ("IsDownloadable", T::Bool),
            ("MP3Url", T::Str),
            ("MP4Url", T::Str),
            ("Name", T::Str),
            ("NotesURL", T::Str),
            ("OutputsPageUrl", T::Str),
            ("RemoteRecorderIds", T::Guids),
            ("SharePageUrl", T::Str),
            ("StartTime", T::DateTime),
            ("State", T::C("SessionState")),
            ("StatusMessage", T::Str),
            ("ThumbUrl", T::Str),
            ("ViewerUrl", T::Str),
        ],
    },
    Contract {
        name: "ListSessionsResponse",
        ns: V42_SOAP,
        members: &[
            ("Results", T::C("ArrayOfSession")),
            ("TotalNumberResults", T::Int),
        ],
    },
    Contract {
        name: "RemoteRecorderDevice",
        ns: V42_SOAP,
        members: &[
            ("DeviceType", T::Str),
            ("IsCapturing", T::Bool),
            ("Name", T::Str),
        ],
    },
    Contract {
        name: "RemoteRecorder",
        ns: V42_SOAP,
        members: &[
            ("Devices", T::C("ArrayOfRemoteRecorderDevice")),
            ("ExternalId", T::Str),
            ("Id", T::Guid),
            ("MachineIP", T::Str),
            ("Name", T::Str),
            ("PreviewUrl", T::Str),
            ("ScheduledRecordings", T::Guids),
            ("SettingsUrl", T::Str),
            ("State", T::C("RemoteRecorderState")),
        ],
    },
    Contract {
        name: "ListRecordersResponse",
        ns: V42_SOAP,
        members: &[
            ("PagedResults", T::C("ArrayOfRemoteRecorder")),
            ("TotalResultCount", T::Int),
        ],
    },
    Contract {
        name: "Folder",
        ns: V46_SOAP,
        members: &[
            ("AllowPublicNotes", T::Bool),
            ("AllowSessionDownload", T::Bool),
            ("AudioPodcastITunesUrl", T::Str),
            ("AudioRssUrl", T::Str),
            ("ChildFolders", T::Guids),
            ("DeliveriesHaveSpecifiedOrder", T::Bool),
            ("Description", T::Str),
            ("EmbedUploaderUrl", T::Str),
            ("EmbedUrl", T::Str),
            ("EnablePodcast", T::Bool),
            ("Id", T::Guid),
            ("IsPublic", T::Bool),
            ("ListUrl", T::Str),
            ("Name", T::Str),
            ("ParentFolder", T::Guid),
            ("Presenters", T::Strings),
            ("Sessions", T::Guids),
            ("SettingsUrl", T::Str),
            ("VideoPodcastITunesUrl", T::Str),
            ("VideoRssUrl", T::Str),
            ("ExternalId", T::Str),
        ],
    },
    Contract {
        name: "Group",
        ns: V40,
        members: &[
            ("ExternalId", T::Str),
            ("GroupType", T::C("GroupType")),
            ("Id", T::Guid),
            ("MembershipProviderName", T::Str),
            ("Name", T::Str),
            ("SystemRole", T::C("SystemRole")),
        ],
    },
    Contract {
        name: "User",
        ns: V40,
        members: &[
            ("Email", T::Str),
            ("EmailSessionNotifications", T::Bool),
            ("FirstName", T::Str),
            ("GroupMemberships", T::Guids),
            ("LastName", T::Str),
            ("SystemRole", T::C("SystemRole")),
            ("UserBio", T::Str),
            ("UserId", T::Guid),
            ("UserKey", T::Str),
            ("UserSettingsUrl", T::Str),
        ],
    },
    Contract {
        name: "FolderAccessDetails",
        ns: V40,
        members: &[
            ("FolderId", T::Guid),
            ("GroupsWithCreatorAccess", T::Guids),
            ("GroupsWithPublisherAccess", T::Guids),
            ("GroupsWithViewerAccess", T::Guids),
            ("IsPublic", T::Bool),
            ("UsersWithCreatorAccess", T::Guids),
            ("UsersWithPublisherAccess", T::Guids),
            ("UsersWithViewerAccess", T::Guids),
        ],
    },
    Contract {
        name: "SessionAccessDetails",
        ns: V40,
        members: &[
            ("FolderAccess", T::C("FolderAccessDetails")),
            ("GroupsWithDirectViewerAccess", T::Guids),
            ("InheritViewerAccess", T::Bool),
            ("IsPublic", T::Bool),
            ("SessionId", T::Guid),
            ("UsersWithDirectViewerAccess", T::Guids),
        ],
    },
];

/// `ArrayOf<X>` lists of contracts or enums: name, item type, namespace.
const ARRAYS: &[(&str, &str, &str)] = &[
    ("ArrayOfSession", "Session", V42_SOAP),
    ("ArrayOfSessionState", "SessionState", V42_SOAP),
    ("ArrayOfRemoteRecorder", "RemoteRecorder", V42_SOAP),
    (
        "ArrayOfRemoteRecorderDevice",
        "RemoteRecorderDevice",
        V42_SOAP,
    ),
    ("ArrayOfFolder", "Folder", V46_SOAP),
    ("ArrayOfGroup", "Group", V40),
    ("ArrayOfUser", "User", V40),
];

/// One operation: its parameters after `auth`, and its result type (none: returns nothing).
struct Op {
    name: &'static str,
    params: &'static [(&'static str, T)],
    result: Option<T>,
}

/// The operations each service answers (`mod.rs` dispatches the same names).
fn operations(service: &str) -> &'static [Op] {
    match service {
        "SessionManagement" => &[
            Op {
                name: "GetSessionsList",
                params: &[
                    ("request", T::C("ListSessionsRequest")),
                    ("searchQuery", T::Str),
                ],
                result: Some(T::C("ListSessionsResponse")),
            },
            Op {
                name: "GetSessionsById",
                params: &[("sessionIds", T::Guids)],
                result: Some(T::C("ArrayOfSession")),
            },
            Op {
                name: "GetFoldersByExternalId",
                params: &[("folderExternalIds", T::Strings)],
                result: Some(T::C("ArrayOfFolder")),
            },
            Op {
                name: "GetAllFoldersByExternalId",
                params: &[
                    ("folderExternalIds", T::Strings),
                    ("providerNames", T::Strings),
                ],
                result: Some(T::C("ArrayOfFolder")),
            },
            Op {
                name: "GetFoldersById",
                params: &[("folderIds", T::Guids)],
                result: Some(T::C("ArrayOfFolder")),
            },
            Op {
                name: "UpdateFolderExternalId",
                params: &[("folderId", T::Guid), ("externalId", T::Str)],
                result: None,
            },
            Op {
                name: "UpdateFolderExternalIdWithProvider",
                params: &[
                    ("folderId", T::Guid),
                    ("externalId", T::Str),
                    ("SiteMembershipProviderName", T::Str),
                ],
                result: None,
            },
            Op {
                name: "AddFolder",
                params: &[
                    ("name", T::Str),
                    ("parentFolder", T::Guid),
                    ("isPublic", T::Bool),
                ],
                result: Some(T::C("Folder")),
            },
            Op {
                name: "MoveSessions",
                params: &[("sessionIds", T::Guids), ("folderId", T::Guid)],
                result: None,
            },
            Op {
                name: "UpdateSessionName",
                params: &[("sessionId", T::Guid), ("name", T::Str)],
                result: None,
            },
            Op {
                name: "UpdateSessionExternalId",
                params: &[("sessionId", T::Guid), ("externalId", T::Str)],
                result: None,
            },
        ],
        "RemoteRecorderManagement" => &[
            Op {
                name: "ListRecorders",
                params: &[("pagination", T::C("Pagination")), ("sortBy", T::Str)],
                result: Some(T::C("ListRecordersResponse")),
            },
            Op {
                name: "GetRemoteRecordersByExternalId",
                params: &[("externalIds", T::Strings)],
                result: Some(T::C("ArrayOfRemoteRecorder")),
            },
        ],
        "UserManagement" => &[
            Op {
                name: "CreateExternalGroup",
                params: &[
                    ("groupName", T::Str),
                    ("externalProvider", T::Str),
                    ("externalId", T::Str),
                    ("memberIds", T::Guids),
                ],
                result: Some(T::C("Group")),
            },
            Op {
                name: "AddMembersToExternalGroup",
                params: &[
                    ("externalProviderName", T::Str),
                    ("externalGroupId", T::Str),
                    ("memberIds", T::Guids),
                ],
                result: None,
            },
            Op {
                name: "RemoveMembersFromExternalGroup",
                params: &[
                    ("externalProviderName", T::Str),
                    ("externalGroupId", T::Str),
                    ("memberIds", T::Guids),
                ],
                result: None,
            },
            Op {
                name: "SyncExternalUser",
                params: &[
                    ("firstName", T::Str),
                    ("lastName", T::Str),
                    ("email", T::Str),
                    ("EmailSessionNotifications", T::Bool),
                    ("externalGroupIds", T::Strings),
                ],
                result: None,
            },
            Op {
                name: "GetGroup",
                params: &[("groupId", T::Guid)],
                result: Some(T::C("Group")),
            },
            Op {
                name: "GetGroupsByName",
                params: &[("groupName", T::Str)],
                result: Some(T::C("ArrayOfGroup")),
            },
            Op {
                name: "GetUsersInGroup",
                params: &[("groupId", T::Guid)],
                result: Some(T::Guids),
            },
            Op {
                name: "DeleteGroup",
                params: &[("groupId", T::Guid)],
                result: None,
            },
            Op {
                name: "GetUserByKey",
                params: &[("userKey", T::Str)],
                result: Some(T::C("User")),
            },
            Op {
                name: "GetUsers",
                params: &[("userIds", T::Guids)],
                result: Some(T::C("ArrayOfUser")),
            },
        ],
        "AccessManagement" => &[
            Op {
                name: "GrantGroupAccessToFolder",
                params: &[
                    ("folderId", T::Guid),
                    ("groupId", T::Guid),
                    ("role", T::C("AccessRole")),
                ],
                result: None,
            },
            Op {
                name: "RevokeGroupAccessFromFolder",
                params: &[
                    ("folderId", T::Guid),
                    ("groupId", T::Guid),
                    ("role", T::C("AccessRole")),
                ],
                result: None,
            },
            Op {
                name: "GrantUsersAccessToFolder",
                params: &[
                    ("folderId", T::Guid),
                    ("userIds", T::Guids),
                    ("role", T::C("AccessRole")),
                ],
                result: None,
            },
            Op {
                name: "RevokeUsersAccessFromFolder",
                params: &[
                    ("folderId", T::Guid),
                    ("userIds", T::Guids),
                    ("role", T::C("AccessRole")),
                ],
                result: None,
            },
            Op {
                name: "GrantGroupViewerAccessToSession",
                params: &[("sessionId", T::Guid), ("groupId", T::Guid)],
                result: None,
            },
            Op {
                name: "RevokeGroupViewerAccessFromSession",
                params: &[("sessionId", T::Guid), ("groupId", T::Guid)],
                result: None,
            },
            Op {
                name: "GrantUsersViewerAccessToSession",
                params: &[("sessionId", T::Guid), ("userIds", T::Guids)],
                result: None,
            },
            Op {
                name: "RevokeUsersViewerAccessFromSession",
                params: &[("sessionId", T::Guid), ("userIds", T::Guids)],
                result: None,
            },
            Op {
                name: "UpdateSessionInheritViewerAccess",
                params: &[("sessionId", T::Guid), ("inheritViewerAccess", T::Bool)],
                result: None,
            },
            Op {
                name: "UpdateSessionIsPublic",
                params: &[("sessionId", T::Guid), ("isPublic", T::Bool)],
                result: None,
            },
            Op {
                name: "UpdateFolderIsPublic",
                params: &[("folderId", T::Guid), ("isPublic", T::Bool)],
                result: None,
            },
            Op {
                name: "GetFolderAccessDetails",
                params: &[("folderId", T::Guid)],
                result: Some(T::C("FolderAccessDetails")),
            },
            Op {
                name: "GetSessionAccessDetails",
                params: &[("sessionId", T::Guid)],
                result: Some(T::C("SessionAccessDetails")),
            },
        ],
        _ => &[],
    }
}

/// The operation names a service answers, for tests comparing with Panopto's WSDL.
pub fn operation_names(service: &str) -> Vec<&'static str> {
    operations(service).iter().map(|o| o.name).collect()
}

/// The namespace a named type lives in.
fn ns_of(name: &str) -> &'static str {
    CONTRACTS
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.ns)
        .or_else(|| ENUMS.iter().find(|e| e.0 == name).map(|e| e.1))
        .or_else(|| ARRAYS.iter().find(|a| a.0 == name).map(|a| a.2))
        .unwrap_or(V40)
}

/// Prefixes for the namespaces used in the document.
const PREFIXES: &[(&str, &str)] = &[
    (TEMPURI, "tns"),
    (V40, "v40"),
    (V42_SOAP, "v42"),
    (V46_SOAP, "v46"),
    (ARRAYS_NS, "arr"),
    (SER_NS, "ser"),
];

fn prefix(ns: &str) -> &'static str {
    PREFIXES
        .iter()
        .find(|(n, _)| *n == ns)
        .map_or("tns", |(_, p)| p)
}

fn type_ref(t: T) -> String {
    match t {
        T::Str => "xs:string".to_owned(),
        T::Guid => "ser:guid".to_owned(),
        T::Bool => "xs:boolean".to_owned(),
        T::Int => "xs:int".to_owned(),
        T::Double => "xs:double".to_owned(),
        T::DateTime => "xs:dateTime".to_owned(),
        T::Guids => "arr:ArrayOfguid".to_owned(),
        T::Strings => "arr:ArrayOfstring".to_owned(),
        T::C(name) => format!("{}:{name}", prefix(ns_of(name))),
    }
}

fn element(out: &mut String, name: &str, t: T) {
    let _ = write!(
        out,
        r#"<xs:element minOccurs="0" name="{name}" nillable="true" type="{}"/>"#,
        type_ref(t)
    );
}

fn xmlns_all() -> String {
    PREFIXES
        .iter()
        .map(|(ns, p)| format!(r#" xmlns:{p}="{ns}""#))
        .collect()
}

/// The schemas: one per namespace, each importing the others it refers to.
fn schemas(service: &str) -> String {
    let mut by_ns: BTreeMap<&str, String> = BTreeMap::new();
    // Operation elements.
    let auth = by_ns.entry(TEMPURI).or_default();
    for op in operations(service) {
        let _ = write!(
            auth,
            r#"<xs:element name="{}"><xs:complexType><xs:sequence>"#,
            op.name
        );
        element(auth, "auth", T::C("AuthenticationInfo"));
        for (name, t) in op.params {
            element(auth, name, *t);
        }
        let _ = write!(
            auth,
            r#"</xs:sequence></xs:complexType></xs:element><xs:element name="{}Response"><xs:complexType><xs:sequence>"#,
            op.name
        );
        if let Some(t) = op.result {
            element(auth, &format!("{}Result", op.name), t);
        }
        auth.push_str("</xs:sequence></xs:complexType></xs:element>");
    }
    for c in CONTRACTS {
        let s = by_ns.entry(c.ns).or_default();
        let _ = write!(s, r#"<xs:complexType name="{}"><xs:sequence>"#, c.name);
        for (name, t) in c.members {
            element(s, name, *t);
        }
        let _ = write!(
            s,
            r#"</xs:sequence></xs:complexType><xs:element name="{0}" nillable="true" type="{1}:{0}"/>"#,
            c.name,
            prefix(c.ns)
        );
    }
    for (name, ns, values) in ENUMS {
        let s = by_ns.entry(ns).or_default();
        let _ = write!(
            s,
            r#"<xs:simpleType name="{name}"><xs:restriction base="xs:string">"#
        );
        for v in *values {
            let _ = write!(s, r#"<xs:enumeration value="{v}"/>"#);
        }
        s.push_str("</xs:restriction></xs:simpleType>");
    }
    for (name, item, ns) in ARRAYS {
        let s = by_ns.entry(ns).or_default();
        let _ = write!(
            s,
            r#"<xs:complexType name="{name}"><xs:sequence><xs:element minOccurs="0" maxOccurs="unbounded" name="{item}" {} type="{}:{item}"/></xs:sequence></xs:complexType>"#,
            if ENUMS.iter().any(|e| e.0 == *item) {
                ""
            } else {
                r#"nillable="true""#
            },
            prefix(ns)
        );
    }
    let arrays = by_ns.entry(ARRAYS_NS).or_default();
    for (name, item, t) in [
        ("ArrayOfguid", "guid", "ser:guid"),
        ("ArrayOfstring", "string", "xs:string"),
    ] {
        let _ = write!(
            arrays,
            r#"<xs:complexType name="{name}"><xs:sequence><xs:element minOccurs="0" maxOccurs="unbounded" name="{item}" type="{t}"/></xs:sequence></xs:complexType>"#
        );
    }
    by_ns.entry(SER_NS).or_default().push_str(
        r#"<xs:simpleType name="guid"><xs:restriction base="xs:string"><xs:pattern value="[\da-fA-F]{8}-[\da-fA-F]{4}-[\da-fA-F]{4}-[\da-fA-F]{4}-[\da-fA-F]{12}"/></xs:restriction></xs:simpleType>"#,
    );
    let all: Vec<&str> = by_ns.keys().copied().collect();
    let mut out = String::new();
    for (ns, body) in &by_ns {
        let _ = write!(
            out,
            r#"<xs:schema elementFormDefault="qualified" targetNamespace="{ns}"{}>"#,
            xmlns_all()
        );
        for other in all.iter().filter(|o| *o != ns) {
            let _ = write!(out, r#"<xs:import namespace="{other}"/>"#);
        }
        out.push_str(body);
        out.push_str("</xs:schema>");
    }
    out
}

/// The whole WSDL of `service`, its port at `address`.
pub fn document(service: &str, address: &str) -> String {
    let iface = format!("I{service}");
    let mut out = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><wsdl:definitions name="{service}" targetNamespace="{TEMPURI}" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema"{}><wsdl:types>{}</wsdl:types>"#,
        xmlns_all(),
        schemas(service)
    );
    for op in operations(service) {
        for (dir, suffix) in [("Input", ""), ("Output", "Response")] {
            let _ = write!(
                out,
                r#"<wsdl:message name="{iface}_{0}_{dir}Message"><wsdl:part name="parameters" element="tns:{0}{suffix}"/></wsdl:message>"#,
                op.name
            );
        }
    }
    let _ = write!(out, r#"<wsdl:portType name="{iface}">"#);
    for op in operations(service) {
        let _ = write!(
            out,
            r#"<wsdl:operation name="{0}"><wsdl:input message="tns:{iface}_{0}_InputMessage"/><wsdl:output message="tns:{iface}_{0}_OutputMessage"/></wsdl:operation>"#,
            op.name
        );
    }
    let _ = write!(
        out,
        r#"</wsdl:portType><wsdl:binding name="BasicHttpBinding_{iface}" type="tns:{iface}"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>"#
    );
    for op in operations(service) {
        let _ = write!(
            out,
            r#"<wsdl:operation name="{0}"><soap:operation soapAction="{TEMPURI}{iface}/{0}" style="document"/><wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>"#,
            op.name
        );
    }
    let _ = write!(
        out,
        r#"</wsdl:binding><wsdl:service name="{service}"><wsdl:port name="BasicHttpBinding_{iface}" binding="tns:BasicHttpBinding_{iface}"><soap:address location="{address}"/></wsdl:port></wsdl:service></wsdl:definitions>"#
    );
    out
}
