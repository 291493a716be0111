{% if var("break_model", false) %}select * from missing_upstream_table{% else %}
select * from (values
    ('EIA', 'eia_rto_region_data', 'hourly'),
    ('ISO-NE', 'isone_lmp_realtime', 'five_minute'),
    ('MISO', 'miso_lmp_realtime', {{ "'five_minute'" if var("break_catalog", false) == false else "null" }})
) as series(provider, dataset, cadence)
{% endif %}
