//! The macro behind the fixed vocabularies of aplaunch's output ([`crate::CheckId`],
//! [`crate::ErrorKind`]): one list declares the enum, its strings and `ALL`, so they cannot
//! drift apart, and every such enum reads, prints and serializes the same way.

/// Declares a non-exhaustive enum of names that stand in output as fixed strings: with
/// `ALL`, `as_str`, `Display` (width and alignment apply), `FromStr` (the exact string,
/// else the given error type) and `Serialize` (the string).
macro_rules! string_enum {
    (
        $(#[doc = $enum_doc:literal])+
        pub enum $name:ident;
        $(#[doc = $err_doc:literal])+
        pub struct $err:ident("is not " $what:literal);
        $($(#[doc = $doc:literal])+ $variant:ident = $text:literal,)+
    ) => {
        $(#[doc = $enum_doc])+
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl $name {
            /// Every value, in the order they are declared (the README's order).
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The string that stands for this value in output.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        $(#[doc = $err_doc])+
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $err(pub String);

        impl ::std::fmt::Display for $err {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{:?} is not {}", self.0, $what)
            }
        }

        impl ::std::error::Error for $err {}

        impl ::std::str::FromStr for $name {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $err(s.to_string()))
            }
        }
    };
}

pub(crate) use string_enum;
