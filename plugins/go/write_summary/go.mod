module bulkhead.example/write_summary

go 1.21
