"""Operations: one module per Thanos objstore operation, each a small ProbeOperation plug-in.

`registry.OPERATIONS` lists them in probe order (identity -> bucket_location -> upload -> exists ->
attributes -> get -> get_range -> iter -> upload_multipart -> delete).
"""
