module github.com/ordersys/ordersys/services/query

go 1.26

require github.com/ordersys/ordersys/pkg v0.0.0

replace (
	github.com/gocql/gocql => github.com/scylladb/gocql v1.16.0
	github.com/ordersys/ordersys/pkg => ../../pkg
)
