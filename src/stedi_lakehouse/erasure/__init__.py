"""The right to erasure: `forget` removes a person from every zone, file and version of the
lake (forget), and later deliveries naming them are kept out (suppression); identifiers finds
them in raw lines however they are written."""
