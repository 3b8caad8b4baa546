"""Pure steps of a log object's way to Parquet: bytes and frames in, frames and bytes out."""
